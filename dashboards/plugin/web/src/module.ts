import { DataSourcePlugin } from '@grafana/data'
import { DataSource } from './datasource'
import { ConfigEditor } from './ConfigEditor'
import { QueryEditor } from './QueryEditor'
import { ShelterOptions, ShelterQuery } from './types'

export const plugin = new DataSourcePlugin<DataSource, ShelterQuery, ShelterOptions>(DataSource)
  .setConfigEditor(ConfigEditor)
  .setQueryEditor(QueryEditor)
