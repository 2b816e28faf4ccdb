import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const outDir = resolve(here, "../static/app");

// Swagger UI for /docs, served from the package like the app (the gateway works offline).
function swaggerAssets() {
  return {
    name: "nexflow-swagger-assets",
    closeBundle() {
      const from = resolve(here, "node_modules/swagger-ui-dist");
      const to = resolve(outDir, "swagger");
      mkdirSync(to, { recursive: true });
      for (const file of ["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"]) {
        copyFileSync(resolve(from, file), resolve(to, file));
      }
    },
  };
}

// The built app is part of the Python package (connectors/web/static/app), served by the
// gateway under /app/; nothing is loaded from a CDN.
export default defineConfig({
  base: "/app/",
  plugins: [react(), swaggerAssets()],
  build: {
    outDir,
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
