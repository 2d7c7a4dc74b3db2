import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

/**
 * The web UI is built into web/dist and served by HridaAI at `/`. The output must run under
 * `default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'`: no inline scripts,
 * no data: URIs for assets (assetsInlineLimit 0), nothing loaded from another origin.
 */
export default defineConfig({
  root,
  base: '/',
  publicDir: 'public',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: 'es2022',
    chunkSizeWarningLimit: 1024,
  },
  server: {
    // `npx vite --config web/vite.config.ts` while `npm run dev` serves the API on :8080.
    proxy: {
      '/api': 'http://127.0.0.1:8080',
      '/health': 'http://127.0.0.1:8080',
      '/static/pyodide': 'http://127.0.0.1:8080',
    },
  },
});
