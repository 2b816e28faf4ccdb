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
[ "$mode" = test ] && pkgs+=(chromium)
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
[ "$mode" = test ] && extras="all,dev"
stamp=".venv/.nexflow-installed-$extras"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  say "installing nexflow[$extras] (first time takes a minute or two)"
  .venv/bin/python -m pip install -q -e ".[$extras]"
  touch "$stamp"
fi

if [ -x scripts/build_guest.sh ]; then
  if ! scripts/build_guest.sh; then
    if [ "$mode" = test ]; then exit 1; fi
    say "the Wasm guest did not build: panels are unavailable until it does (see docs/sandbox.md)"
  fi
fi
say "ready"
