// Checks the built module.js the way Grafana's loader sees it: one AMD
// define() whose dependencies are only libraries Grafana shares with
// plugins, and whose factory exports `plugin`, a data source plugin with
// both editors set. The shared libraries are stand-ins here: the check is
// about the bundle's shape, not Grafana's classes.
import { readFileSync } from 'node:fs'
import vm from 'node:vm'
import { shared } from './rollup.config.mjs'

const file = process.argv[2]
let deps, factory
vm.runInNewContext(readFileSync(file, 'utf8'), {
  define: (d, f) => {
    if (deps) throw new Error('define() called twice')
    ;[deps, factory] = [d, f]
  },
})
if (!deps) throw new Error(`${file}: no AMD define()`)
const extra = deps.filter((d) => d !== 'exports' && !shared.includes(d))
if (extra.length) throw new Error(`${file}: imports ${extra.join(', ')}, which Grafana does not share with plugins`)

class DataSourcePlugin {
  constructor(ds) {
    this.DataSourceClass = ds
  }
  setConfigEditor(c) {
    this.configEditor = c
    return this
  }
  setQueryEditor(q) {
    this.queryEditor = q
    return this
  }
}
class DataSourceWithBackend {}
const stand = {
  '@grafana/data': { DataSourcePlugin },
  '@grafana/runtime': { DataSourceWithBackend, getTemplateSrv: () => ({ replace: (s) => s }) },
  '@grafana/ui': {},
  react: { createElement: () => null, useState: (v) => [v, () => {}], useEffect: () => {} },
  'react-dom': {},
  rxjs: {},
  'rxjs/operators': {},
}
const exports = {}
factory(...deps.map((d) => (d === 'exports' ? exports : stand[d])))
const p = exports.plugin
if (!(p instanceof DataSourcePlugin) || typeof p.configEditor !== 'function' || typeof p.queryEditor !== 'function') {
  throw new Error(`${file}: does not export a data source plugin with a config and a query editor`)
}
if (!(p.DataSourceClass.prototype instanceof DataSourceWithBackend)) {
  throw new Error(`${file}: the data source does not extend DataSourceWithBackend`)
}
console.log(`${file}: AMD module, imports ${deps.filter((d) => d !== 'exports').join(', ')}; exports plugin with both editors`)
