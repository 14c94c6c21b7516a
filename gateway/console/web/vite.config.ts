import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'
import Components from 'unplugin-vue-components/vite'
import { ElementPlusResolver } from 'unplugin-vue-components/resolvers'

// The console is built into ../dist, which the gateway embeds. Element Plus
// components (and their styles) are imported where a template uses them,
// not as a whole, so the alarm board loads only what it shows.
export default defineConfig({
  base: '/',
  plugins: [
    vue(),
    Components({
      resolvers: [ElementPlusResolver({ importStyle: 'css' })],
      dts: false,
    }),
  ],
  build: {
    outDir: '../dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 700,
    reportCompressedSize: false,
  },
  server: {
    // `npm run dev` against a gateway on this machine (make run).
    proxy: { '/api': 'http://127.0.0.1:8080' },
  },
})
