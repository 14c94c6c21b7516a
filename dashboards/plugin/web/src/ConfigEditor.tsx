import React from 'react'
import { DataSourcePluginOptionsEditorProps } from '@grafana/data'
import { Button, InlineField, Input, SecretInput } from '@grafana/ui'
import { Gateway, ShelterOptions } from './types'

type Props = DataSourcePluginOptionsEditorProps<ShelterOptions>

/**
 * One row per gateway: a name (unique; it labels the data), the gateway's
 * URL, and an API token kept by Grafana as a secret (token_<name>). A
 * county office adds one row per facility it supervises, each with the
 * token that facility issued it.
 */
export function ConfigEditor({ options, onOptionsChange }: Props) {
  const gateways = options.jsonData.gateways ?? []
  const secure = (options.secureJsonData ?? {}) as Record<string, string>
  const configured = (options.secureJsonFields ?? {}) as Record<string, boolean>

  const setGateways = (gs: Gateway[]) => onOptionsChange({ ...options, jsonData: { ...options.jsonData, gateways: gs } })
  const update = (i: number, g: Partial<Gateway>) => setGateways(gateways.map((x, j) => (j === i ? { ...x, ...g } : x)))
  const setToken = (name: string, value: string) =>
    onOptionsChange({ ...options, secureJsonData: { ...secure, ['token_' + name]: value } })
  const resetToken = (name: string) =>
    onOptionsChange({
      ...options,
      secureJsonFields: { ...configured, ['token_' + name]: false },
      secureJsonData: { ...secure, ['token_' + name]: '' },
    })

  return (
    <div>
      {gateways.map((g, i) => (
        <div key={i}>
          <InlineField label="Name · 名称" labelWidth={16} tooltip="Unique; labels this gateway's data">
            <Input width={20} value={g.name} onChange={(e) => update(i, { name: e.currentTarget.value })} />
          </InlineField>
          <InlineField label="URL · 地址" labelWidth={16} tooltip="The gateway's API, e.g. https://gateway.north.example:8080">
            <Input width={40} value={g.url} onChange={(e) => update(i, { url: e.currentTarget.value })} />
          </InlineField>
          <InlineField label="API token · 令牌" labelWidth={16} tooltip="A token of role viewer (or inspector) issued by this gateway">
            <SecretInput
              width={40}
              isConfigured={!!configured['token_' + g.name]}
              value={secure['token_' + g.name] ?? ''}
              onChange={(e) => setToken(g.name, e.currentTarget.value)}
              onReset={() => resetToken(g.name)}
            />
          </InlineField>
          <Button variant="secondary" size="sm" onClick={() => setGateways(gateways.filter((_, j) => j !== i))}>
            Remove · 删除
          </Button>
        </div>
      ))}
      <Button icon="plus" onClick={() => setGateways([...gateways, { name: '', url: '' }])}>
        Add gateway · 添加网关
      </Button>
    </div>
  )
}
