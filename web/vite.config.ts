import preact from "@preact/preset-vite";
import { defineConfig } from "vitest/config";

// `npm run dev` proxies the API to a running `make run`, so the UI can be edited live.
export default defineConfig({
  plugins: [preact()],
  // CodeMirror (loaded only for code tasks) is one ~550 kB chunk, on purpose.
  build: { outDir: "dist", emptyOutDir: true, sourcemap: true, chunkSizeWarningLimit: 600 },
  server: { proxy: { "/api": "http://127.0.0.1:8000" } },
  test: { environment: "node", include: ["src/**/*.test.ts"] },
});
