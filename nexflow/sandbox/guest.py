"""Where the wasm guest lives and how it is built."""

from __future__ import annotations

import subprocess
from pathlib import Path

from nexflow.sandbox.errors import GuestNotBuilt

GUEST_DIR = Path(__file__).resolve().parent / "guest"
DEFAULT_GUEST_PATH = GUEST_DIR / "build" / "nexflow_guest.wasm"
BUILD_SCRIPT = GUEST_DIR.parents[2] / "scripts" / "build_guest.sh"
BUILD_COMMAND = "scripts/build_guest.sh"


def read_guest(path: Path) -> bytes:
    """The guest's wasm bytes, or ``GuestNotBuilt`` naming the build command."""
    try:
        return path.read_bytes()
    except FileNotFoundError as e:
        raise GuestNotBuilt(
            f"sandbox guest {path} is missing; build it with `{BUILD_COMMAND}` "
            "(needs: apt-get install clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32)"
        ) from e


def build_guest(timeout_s: float = 900.0) -> Path:
    """Run the build script (idempotent; a no-op when the guest is up to date)."""
    if not BUILD_SCRIPT.is_file():
        raise GuestNotBuilt(f"{BUILD_SCRIPT} not found; run `{BUILD_COMMAND}` from a checkout")
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if result.returncode != 0:
        raise GuestNotBuilt(f"`{BUILD_COMMAND}` failed:\n{result.stderr.strip()}")
    return DEFAULT_GUEST_PATH
