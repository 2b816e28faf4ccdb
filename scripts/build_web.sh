#!/usr/bin/env bash
# Builds GraphStudio (connectors/web/app, React + Vite) into connectors/web/static/app, the
# package data the gateway serves at / — when it is missing or older than its sources.
#   scripts/build_web.sh           # build if needed
#   scripts/build_web.sh --force   # build anyway
# Needs Node.js 18+ and npm (the npm registry for `npm ci`, once). A wheel built after this
# carries the app, so installing Nexflow from it needs no Node.
set -euo pipefail
cd "$(dirname "$0")/.."
app=connectors/web/app
out=connectors/web/static/app/index.html
say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

stale=0
if [ "${1:-}" = --force ] || [ ! -f "$out" ]; then
  stale=1
elif [ -n "$(find "$app/src" "$app/index.html" "$app/package-lock.json" "$app/vite.config.ts" \
      -newer "$out" -print -quit)" ]; then
  stale=1
fi
[ "$stale" = 1 ] || exit 0
if ! command -v npm >/dev/null; then
  say "GraphStudio needs Node.js and npm to build (apt-get install nodejs npm)"
  exit 1
fi
if [ ! -f "$app/node_modules/.package-lock.json" ] \
   || [ "$app/package-lock.json" -nt "$app/node_modules/.package-lock.json" ]; then
  say "installing GraphStudio's packages (npm ci, from the committed lockfile)"
  npm ci --prefix "$app" --no-audit --no-fund --loglevel=error >/dev/null
fi
say "building GraphStudio"
(cd "$app" && npx --no-install vite build --logLevel warn)
