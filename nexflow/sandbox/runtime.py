"""Low-level guest runtime: one wasmtime Engine, the guest module, a memory
snapshot of an initialised QuickJS context, and one fresh Store per call.

The guest ABI is described in ``guest/glue.c``. Creating a QuickJS context
costs ~5M wasm instructions, so it is done once in a template instance; the
pages it dirtied are copied into every fresh instance (the idea behind Wizer).
The only imports are five WASI functions, stubbed here with no capability at
all (fixed clock at 0, every fd closed), and the two ``nexflow`` host-call
functions that reach the per-call ``HostCalls``.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import wasmtime
from wasmtime import FuncType, TrapCode, ValType

from nexflow.sandbox.cache import load_module
from nexflow.sandbox.capabilities import HostCalls
from nexflow.sandbox.errors import (
    GuestError,
    MemoryLimitExceeded,
    OutOfFuel,
    OutputInvalid,
    SandboxError,
    WallTimeExceeded,
)
from nexflow.sandbox.guest import read_guest
from nexflow.sandbox.models import MiB, SandboxLimits
from nexflow.sandbox.ticker import EpochTicker

log = logging.getLogger(__name__)

MODE_HANDLER = 0
MODE_BATCH = 1
FLAG_OOM = 1
ERRNO_BADF = 8
# QuickJS's own stack check must fire before wasmtime's 512 KiB native stack
# limit does, so deep recursion is a catchable RangeError rather than a trap.
JS_STACK_BYTES = 128 * 1024
MAX_HOST_REQUEST = 64 * 1024
_PAGE = 64 * 1024
_CHUNK = 4096
_INIT_FUEL = 1_000_000_000
_ENGINE_SETTINGS = "fuel+epoch;cranelift-speed;v1"


@dataclass(frozen=True, slots=True)
class _Snapshot:
    pages: int
    chunks: tuple[tuple[int, bytes], ...]

    @property
    def size(self) -> int:
        return self.pages * _PAGE


@dataclass(frozen=True, slots=True)
class GuestReply:
    output: bytes
    fuel_used: int


class GuestRuntime:
    """Runs raw guest calls; ``SandboxEngine`` adds the JSON protocol on top."""

    def __init__(self, guest_path: Path, cache_dir: Path | None) -> None:
        wasm = read_guest(guest_path)
        config = wasmtime.Config()
        config.consume_fuel = True
        config.epoch_interruption = True
        config.cranelift_opt_level = "speed"
        self.engine = wasmtime.Engine(config)
        self.ticker = EpochTicker(self.engine)
        self.module, self.cache_status = load_module(self.engine, wasm, cache_dir, _ENGINE_SETTINGS)
        # Per-thread current HostCalls; the host functions close over this object
        # only (not over self) so the linker does not keep the runtime alive.
        self._local = threading.local()
        self._pre = _linker(self.engine, self._local).instantiate_pre(self.module)
        self._snapshot = self._make_snapshot()

    def call(self, mode: int, payload: bytes, limits: SandboxLimits, host: HostCalls) -> GuestReply:
        """Run one guest call in a fresh instance; returns the raw result JSON."""
        reserve = max(limits.memory_bytes // 8, 2 * MiB) + 2 * len(payload)
        js_heap = limits.memory_bytes - self._snapshot.size - reserve
        if js_heap < MiB:
            raise MemoryLimitExceeded(
                f"input of {len(payload)} bytes leaves no room within "
                f"{limits.memory_bytes} bytes of guest memory"
            )
        store = wasmtime.Store(self.engine)
        store.set_limits(memory_size=limits.memory_bytes)
        try:
            exports = self._pre.instantiate(store).exports(store)
        except wasmtime.WasmtimeError as e:
            raise MemoryLimitExceeded("could not instantiate the guest within limits") from e
        memory = _memory(exports["memory"])
        self._restore(store, memory)
        store.set_fuel(limits.fuel)
        self._local.host = host
        try:
            with self.ticker.active():
                store.set_epoch_deadline(self.ticker.deadline_ticks(limits.wall_time_ms))
                in_ptr = _func(exports["nx_alloc"])(store, len(payload))
                if not in_ptr:
                    raise MemoryLimitExceeded(
                        f"input of {len(payload)} bytes does not fit in the guest"
                    )
                _write(store, memory, in_ptr, payload)
                out_ptr = _func(exports["nx_run"])(
                    store, mode, in_ptr, len(payload), js_heap, JS_STACK_BYTES
                )
        except wasmtime.Trap as e:
            raise _translate_trap(e, limits, _read_flags(store, exports)) from e
        except wasmtime.WasmtimeError as e:
            raise SandboxError("the sandbox runtime failed") from e
        finally:
            self._local.host = None
        fuel_used = limits.fuel - store.get_fuel()
        if _read_flags(store, exports) & FLAG_OOM:
            raise MemoryLimitExceeded(
                f"the script used more than its {js_heap} byte heap "
                f"(memory limit {limits.memory_bytes} bytes)"
            )
        size = _func(exports["nx_out_len"])(store)
        if size > limits.max_output_bytes:
            raise OutputInvalid(
                f"result of {size} bytes exceeds the {limits.max_output_bytes} byte limit"
            )
        output = _read(store, memory, out_ptr, size)
        return GuestReply(output=output, fuel_used=fuel_used)

    def _make_snapshot(self) -> _Snapshot:
        store = wasmtime.Store(self.engine)
        store.set_fuel(_INIT_FUEL)
        store.set_epoch_deadline(2**62)
        exports = self._pre.instantiate(store).exports(store)
        memory = _memory(exports["memory"])
        pristine = bytes(memory.read(store, 0, memory.data_len(store)))
        _func(exports["_initialize"])(store)
        rc = _func(exports["nx_init"])(store)
        if rc != 0:
            raise SandboxError(f"the sandbox guest failed to initialise (code {rc})")
        image = bytes(memory.read(store, 0, memory.data_len(store)))
        chunks: list[tuple[int, bytes]] = []
        start: int | None = None
        for off in range(0, len(image) + _CHUNK, _CHUNK):
            dirty = off < len(image) and image[off : off + _CHUNK] != pristine[off : off + _CHUNK]
            if dirty and start is None:
                start = off
            elif not dirty and start is not None:
                chunks.append((start, image[start:off]))
                start = None
        return _Snapshot(pages=memory.size(store), chunks=tuple(chunks))

    def _restore(self, store: wasmtime.Store, memory: wasmtime.Memory) -> None:
        grow = self._snapshot.pages - memory.size(store)
        if grow > 0:
            try:
                memory.grow(store, grow)
            except wasmtime.WasmtimeError as e:
                raise MemoryLimitExceeded("the memory limit is below the guest's base size") from e
        for offset, data in self._snapshot.chunks:
            _write(store, memory, offset, data)


def _translate_trap(e: wasmtime.Trap, limits: SandboxLimits, flags: int) -> SandboxError:
    code = e.trap_code
    if code is TrapCode.OUT_OF_FUEL:
        return OutOfFuel(f"the script used all of its {limits.fuel} fuel")
    if code is TrapCode.INTERRUPT:
        return WallTimeExceeded(f"the script ran longer than {limits.wall_time_ms} ms")
    if flags & FLAG_OOM:
        return MemoryLimitExceeded(f"the script ran out of its {limits.memory_bytes} byte memory")
    if code is TrapCode.STACK_OVERFLOW:
        return GuestError("RangeError", "Maximum call stack size exceeded")
    log.warning("sandbox guest trapped: %s", e.message)
    name = code.name if code is not None else "unknown"
    return GuestError("InternalError", f"the sandbox guest crashed ({name})")


def _read_flags(store: wasmtime.Store, exports: Mapping[str, object]) -> int:
    """Guest flags, readable even after a trap (refuels the store a little)."""
    try:
        store.set_fuel(100_000)
        store.set_epoch_deadline(2**62)
        flags = _func(exports["nx_flags"])(store)
    except (wasmtime.Trap, wasmtime.WasmtimeError):
        return 0
    return flags if isinstance(flags, int) else 0


# wasmtime-py's Memory.read/write build a ctypes array type and an extra copy
# per call; with a ~200 KiB snapshot per call that dominated the call time.
def _address(store: wasmtime.Store, memory: wasmtime.Memory, offset: int, size: int) -> int:
    if offset < 0 or size < 0 or offset + size > memory.data_len(store):
        raise OutputInvalid("the guest pointed outside its memory")
    return ctypes.addressof(memory.data_ptr(store).contents) + offset


def _write(store: wasmtime.Store, memory: wasmtime.Memory, offset: int, data: bytes) -> None:
    ctypes.memmove(_address(store, memory, offset, len(data)), data, len(data))


def _read(store: wasmtime.Store, memory: wasmtime.Memory, offset: int, size: int) -> bytes:
    return ctypes.string_at(_address(store, memory, offset, size), size)


def _func(item: object) -> wasmtime.Func:
    if not isinstance(item, wasmtime.Func):
        raise SandboxError("the sandbox guest does not export the expected functions")
    return item


def _memory(item: object) -> wasmtime.Memory:
    if not isinstance(item, wasmtime.Memory):
        raise SandboxError("the sandbox guest does not export its memory")
    return item


def _linker(engine: wasmtime.Engine, local: threading.local) -> wasmtime.Linker:
    """Imports for the guest. Host functions must never raise: wasmtime-py keeps
    the pending Python exception in a process-wide slot, which is not safe when
    several threads run guests."""
    i32, i64 = ValType.i32(), ValType.i64()
    linker = wasmtime.Linker(engine)

    def clock_time_get(caller: wasmtime.Caller, _clock: int, _prec: int, out: int) -> int:
        # Deterministic clock: Date.now() is always 0 unless a capability says otherwise.
        try:
            _memory(caller["memory"]).write(caller, bytes(8), out)
        except (KeyError, SandboxError, wasmtime.WasmtimeError, IndexError, ValueError):
            return ERRNO_BADF
        return 0

    def host_call(caller: wasmtime.Caller, ptr: int, size: int) -> int:
        local.reply = b""
        try:
            host: HostCalls | None = getattr(local, "host", None)
            if host is None or not 0 <= size <= MAX_HOST_REQUEST:
                return -1
            request = bytes(_memory(caller["memory"]).read(caller, ptr, ptr + size))
            local.reply = host.answer(request)
            return len(local.reply)
        except Exception:
            log.exception("sandbox host call failed")
            return -1

    def host_result(caller: wasmtime.Caller, dst: int) -> None:
        try:
            _memory(caller["memory"]).write(caller, local.reply, dst)
        except Exception:
            log.exception("sandbox host result copy failed")

    wasi = "wasi_snapshot_preview1"
    linker.define_func(
        wasi, "clock_time_get", FuncType([i32, i64, i32], [i32]), clock_time_get, True
    )
    linker.define_func(wasi, "fd_close", FuncType([i32], [i32]), lambda _fd: ERRNO_BADF)
    linker.define_func(
        wasi, "fd_fdstat_get", FuncType([i32, i32], [i32]), lambda _fd, _buf: ERRNO_BADF
    )
    linker.define_func(
        wasi, "fd_seek", FuncType([i32, i64, i32, i32], [i32]), lambda *_a: ERRNO_BADF
    )
    linker.define_func(
        wasi, "fd_write", FuncType([i32, i32, i32, i32], [i32]), lambda *_a: ERRNO_BADF
    )
    linker.define_func("nexflow", "host_call", FuncType([i32, i32], [i32]), host_call, True)
    linker.define_func("nexflow", "host_result", FuncType([i32], []), host_result, True)
    return linker
