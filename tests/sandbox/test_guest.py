from __future__ import annotations

from pathlib import Path

import pytest
import wasmtime

from nexflow.sandbox import BUILD_COMMAND, GuestNotBuilt, SandboxError
from nexflow.sandbox.engine import SandboxEngine

ALLOWED_IMPORTS = {
    ("wasi_snapshot_preview1", "clock_time_get"),
    ("wasi_snapshot_preview1", "fd_close"),
    ("wasi_snapshot_preview1", "fd_fdstat_get"),
    ("wasi_snapshot_preview1", "fd_seek"),
    ("wasi_snapshot_preview1", "fd_write"),
    ("nexflow", "host_call"),
    ("nexflow", "host_result"),
}


def test_missing_guest_names_the_build_command(tmp_path: Path) -> None:
    with pytest.raises(GuestNotBuilt) as info:
        SandboxEngine(guest_path=tmp_path / "nope.wasm")

    assert BUILD_COMMAND in str(info.value)
    assert isinstance(info.value, SandboxError)


def test_guest_imports_nothing_beyond_the_stubbed_set(guest_path: Path) -> None:
    module = wasmtime.Module.from_file(wasmtime.Engine(), str(guest_path))
    imports = {(i.module, i.name) for i in module.imports}

    # No path_open, sock_*, environ_*, args_*, random_get, poll_oneoff...
    assert imports <= ALLOWED_IMPORTS


def test_guest_is_up_to_date(guest_path: Path) -> None:
    glue = guest_path.parents[1] / "glue.c"
    prelude = guest_path.parents[1] / "prelude.js"

    assert guest_path.stat().st_mtime >= max(glue.stat().st_mtime, prelude.stat().st_mtime)
