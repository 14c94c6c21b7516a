import React from 'react'
import { QueryEditorProps, SelectableValue } from '@grafana/data'
import { InlineField, InlineSwitch, Input, MultiSelect, Select } from '@grafana/ui'
import { DataSource } from './datasource'
import { QueryType, ShelterOptions, ShelterQuery } from './types'

type Props = QueryEditorProps<DataSource, ShelterQuery, ShelterOptions>

const types: Array<SelectableValue<QueryType>> = [
  { value: 'alarms', label: 'Alarms · 报警', description: 'open alarms and how they are handled' },
  { value: 'readings', label: 'Readings · 读数', description: 'history of a device, kind or zone, downsampled by the gateway' },
  { value: 'availability', label: 'Availability · 在线率', description: 'devices online, offline and unknown, with outages' },
  { value: 'cameras', label: 'Cameras · 摄像头', description: 'live or dark, and why' },
  { value: 'video_sessions', label: 'Video sessions · 视频观看', description: 'who is watching which camera' },
]

/** Picks what to ask the gateways for; readings take a device, kind and zone. */
export function QueryEditor({ query, onChange, onRunQuery, datasource }: Props) {
  const gatewayNames = datasource.gateways.map((g) => ({ value: g.name, label: g.name }))
  const set = (q: Partial<ShelterQuery>) => {
    onChange({ ...query, ...q })
    onRunQuery()
  }
  const type = query.queryType ?? 'alarms'
  return (
    <div>
      <InlineField label="Query · 查询" labelWidth={14}>
        <Select width={30} options={types} value={type} onChange={(v) => set({ queryType: v.value })} />
      </InlineField>
      {type === 'alarms' && (
        <InlineField label="Live · 实时" labelWidth={14} tooltip="New alarms arrive the moment they fire">
          <InlineSwitch value={!!query.live} onChange={(e) => set({ live: e.currentTarget.checked })} />
        </InlineField>
      )}
      {type === 'readings' && (
        <>
          <InlineField label="Device · 设备" labelWidth={14}>
            <Input width={24} value={query.device ?? ''} onChange={(e) => onChange({ ...query, device: e.currentTarget.value })} onBlur={onRunQuery} />
          </InlineField>
          <InlineField label="Kind · 类型" labelWidth={14}>
            <Input width={24} value={query.kind ?? ''} placeholder="temperature" onChange={(e) => onChange({ ...query, kind: e.currentTarget.value })} onBlur={onRunQuery} />
          </InlineField>
          <InlineField label="Zone · 区域" labelWidth={14}>
            <Input width={24} value={query.zone ?? ''} onChange={(e) => onChange({ ...query, zone: e.currentTarget.value })} onBlur={onRunQuery} />
          </InlineField>
        </>
      )}
      <InlineField label="Gateways · 网关" labelWidth={14} tooltip="Empty: every configured gateway">
        <MultiSelect
          width={40}
          options={gatewayNames}
          value={query.gateways ?? []}
          onChange={(v: Array<SelectableValue<string>>) => set({ gateways: v.map((x) => x.value!).filter(Boolean) })}
        />
      </InlineField>
    </div>
  )
}
