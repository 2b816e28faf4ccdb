from __future__ import annotations

from pathlib import Path

from nexflow.sandbox.cache import CacheStatus
from nexflow.sandbox.engine import SandboxEngine


def only_entry(cache: Path) -> Path:
    [entry] = list(cache.glob("guest-*.cwasm"))
    return entry


def run_ok(engine: SandboxEngine) -> None:
    assert engine.run_handler("$state.x = 1;", {}, {}).state == {"x": 1}


def test_second_engine_loads_from_cache(guest_path: Path, tmp_path: Path) -> None:
    with SandboxEngine(cache_dir=tmp_path, guest_path=guest_path) as first:
        assert first.cache_status is CacheStatus.COMPILED
        run_ok(first)
    entry = only_entry(tmp_path)
    assert "wasmtime" in entry.name

    with SandboxEngine(cache_dir=tmp_path, guest_path=guest_path) as second:
        assert second.cache_status is CacheStatus.HIT
        run_ok(second)


def test_corrupted_cache_entry_is_rebuilt(guest_path: Path, tmp_path: Path) -> None:
    with SandboxEngine(cache_dir=tmp_path, guest_path=guest_path):
        pass
    entry = only_entry(tmp_path)
    blob = bytearray(entry.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    entry.write_bytes(bytes(blob))

    with SandboxEngine(cache_dir=tmp_path, guest_path=guest_path) as engine:
        assert engine.cache_status is CacheStatus.REBUILT
        run_ok(engine)
    with SandboxEngine(cache_dir=tmp_path, guest_path=guest_path) as engine:
        assert engine.cache_status is CacheStatus.HIT


def test_truncated_cache_entry_is_rebuilt(guest_path: Path, tmp_path: Path) -> None:
    with SandboxEngine(cache_dir=tmp_path, guest_path=guest_path):
        pass
    only_entry(tmp_path).write_bytes(b"\x00" * 10)

    with SandboxEngine(cache_dir=tmp_path, guest_path=guest_path) as engine:
        assert engine.cache_status is CacheStatus.REBUILT
        run_ok(engine)


def test_stale_entries_are_pruned(guest_path: Path, tmp_path: Path) -> None:
    stale = tmp_path / "guest-0000-wasmtime1.0.0-0000.cwasm"
    stale.write_bytes(b"old")

    with SandboxEngine(cache_dir=tmp_path, guest_path=guest_path):
        pass

    assert not stale.exists()
    only_entry(tmp_path)


def test_without_cache_dir(guest_path: Path) -> None:
    with SandboxEngine(guest_path=guest_path) as engine:
        assert engine.cache_status is CacheStatus.UNCACHED
        run_ok(engine)
