"""Precompiled module cache: compiled machine code on disk, keyed by the wasm
hash, the wasmtime version and the engine settings.

Each entry is ``sha256(payload) || payload`` so a truncated or corrupted file
is detected before wasmtime sees it and is simply recompiled. The cache
directory must be writable only by the gateway: wasmtime trusts what it
deserializes.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import logging
import os
import tempfile
from importlib.metadata import version
from pathlib import Path

import wasmtime

log = logging.getLogger(__name__)

_DIGEST = 32


class CacheStatus(enum.Enum):
    HIT = "hit"  # loaded precompiled code from the cache
    COMPILED = "compiled"  # no entry yet: compiled and stored
    REBUILT = "rebuilt"  # entry was unreadable or corrupted: compiled and replaced
    UNCACHED = "uncached"  # no cache directory configured


def cache_key(wasm: bytes, settings: str) -> str:
    wasm_hash = hashlib.sha256(wasm).hexdigest()[:24]
    settings_hash = hashlib.sha256(settings.encode()).hexdigest()[:8]
    return f"guest-{wasm_hash}-wasmtime{version('wasmtime')}-{settings_hash}.cwasm"


def load_module(
    engine: wasmtime.Engine, wasm: bytes, cache_dir: Path | None, settings: str
) -> tuple[wasmtime.Module, CacheStatus]:
    """Load from ``cache_dir`` when possible, otherwise compile (and store)."""
    if cache_dir is None:
        return wasmtime.Module(engine, wasm), CacheStatus.UNCACHED
    path = cache_dir / cache_key(wasm, settings)
    status = CacheStatus.COMPILED
    if path.exists():
        module = _read_entry(engine, path)
        if module is not None:
            return module, CacheStatus.HIT
        status = CacheStatus.REBUILT
    module = wasmtime.Module(engine, wasm)
    _write_entry(path, bytes(module.serialize()))
    _prune(cache_dir, keep=path)
    return module, status


def _read_entry(engine: wasmtime.Engine, path: Path) -> wasmtime.Module | None:
    try:
        blob = path.read_bytes()
    except OSError:
        log.warning("sandbox cache entry %s is unreadable; recompiling", path, exc_info=True)
        return None
    digest, payload = blob[:_DIGEST], blob[_DIGEST:]
    if len(digest) != _DIGEST or hashlib.sha256(payload).digest() != digest:
        log.warning("sandbox cache entry %s is corrupted; recompiling", path)
        return None
    try:
        return wasmtime.Module.deserialize(engine, payload)
    except wasmtime.WasmtimeError:
        log.warning("sandbox cache entry %s was rejected by wasmtime; recompiling", path)
        return None


def _prune(cache_dir: Path, keep: Path) -> None:
    """Drop entries for other guest builds or wasmtime versions (one guest per dir)."""
    for stale in cache_dir.glob("guest-*.cwasm"):
        if stale != keep:
            with contextlib.suppress(OSError):
                stale.unlink()


def _write_entry(path: Path, payload: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".cwasm")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(hashlib.sha256(payload).digest())
                fh.write(payload)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        # A read-only cache only costs a compile next time; the engine still works.
        log.warning("could not write sandbox cache entry %s", path, exc_info=True)
