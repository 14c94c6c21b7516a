import { DataQuery, DataSourceJsonData } from '@grafana/data'

/** What a panel asks one or more gateways for (the backend's query model). */
export type QueryType = 'alarms' | 'readings' | 'availability' | 'cameras' | 'video_sessions'

export interface ShelterQuery extends DataQuery {
  queryType?: QueryType
  /** alarms: follow new alarms live (Grafana Live) instead of a snapshot. */
  live?: boolean
  /** readings: what to fetch; empty means every device/kind/zone. */
  device?: string
  kind?: string
  zone?: string
  /** Only these gateways (by name); empty means every configured one. */
  gateways?: string[]
}

export const defaultQuery: Partial<ShelterQuery> = { queryType: 'alarms' }

/** One gateway the data source talks to; its API token is a secret (token_<name>). */
export interface Gateway {
  name: string
  url: string
}

export interface ShelterOptions extends DataSourceJsonData {
  gateways?: Gateway[]
}
