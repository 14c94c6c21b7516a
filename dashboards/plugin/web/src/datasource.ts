import { DataSourceInstanceSettings, ScopedVars } from '@grafana/data'
import { DataSourceWithBackend, getTemplateSrv } from '@grafana/runtime'
import { Gateway, ShelterOptions, ShelterQuery, defaultQuery } from './types'

/**
 * The ShelterWatch data source runs its queries in the backend plugin,
 * which talks to the gateways; the browser only fills in dashboard
 * variables. A live alarm query comes back with a Grafana Live channel,
 * which DataSourceWithBackend subscribes to by itself.
 */
export class DataSource extends DataSourceWithBackend<ShelterQuery, ShelterOptions> {
  /** The configured gateways, for the query editor's filter. */
  readonly gateways: Gateway[]

  constructor(settings: DataSourceInstanceSettings<ShelterOptions>) {
    super(settings)
    this.gateways = settings.jsonData.gateways ?? []
  }

  getDefaultQuery(): Partial<ShelterQuery> {
    return defaultQuery
  }

  applyTemplateVariables(query: ShelterQuery, scopedVars: ScopedVars): ShelterQuery {
    const t = getTemplateSrv()
    const sub = (s?: string) => (s ? t.replace(s, scopedVars) : s)
    return { ...query, device: sub(query.device), kind: sub(query.kind), zone: sub(query.zone) }
  }

  filterQuery(query: ShelterQuery): boolean {
    return !query.hide
  }
}
