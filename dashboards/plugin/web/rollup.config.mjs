// Grafana loads a plugin's module.js with SystemJS as an AMD module and
// hands it its own copies of the shared libraries, so those stay external:
// the bundle holds only our editors and the data source class.
import esbuild from 'rollup-plugin-esbuild'

export const shared = ['@grafana/data', '@grafana/ui', '@grafana/runtime', 'react', 'react-dom', 'rxjs', 'rxjs/operators']

export default {
  input: 'src/module.ts',
  external: shared,
  plugins: [esbuild({ target: 'es2020', jsx: 'transform', jsxFactory: 'React.createElement', minify: true })],
  output: { file: 'dist/module.js', format: 'amd', sourcemap: false },
}
