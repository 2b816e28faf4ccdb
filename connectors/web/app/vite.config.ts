import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The built app is part of the Python package (connectors/web/static/app), served by the
// gateway under /app/; nothing is loaded from a CDN.
export default defineConfig({
  base: "/app/",
  plugins: [react()],
  build: {
    outDir: "../static/app",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    chunkSizeWarningLimit: 900,
  },
  server: {
    proxy: {
      "/api": "http://127.0.0.1:8080",
      "/ws": { target: "ws://127.0.0.1:8080", ws: true },
    },
  },
});
