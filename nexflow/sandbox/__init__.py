"""Sandboxed JavaScript for NXML panels: QuickJS-NG compiled to wasm32-wasi, run by wasmtime.

    from nexflow.sandbox.engine import SandboxEngine  # imports wasmtime: where it is used

    engine = SandboxEngine(cache_dir=Path("var/cache/sandbox"))
    outcome = engine.run_handler(source, state, args, SandboxLimits(), Capabilities())
    values = engine.eval_batch(["$state.cpu_load > 80 ? 'down' : 'up'"], state)

The guest has no WASI capabilities (no files, env, args, network or clock);
``$fs.read`` and ``$http.get`` reach the host only as far as ``Capabilities``
grant. Build the guest with ``scripts/build_guest.sh``; see ``docs/sandbox.md``.

Exceptions (every one means "apply nothing"; the caller keeps its old state)::

    SandboxError                 base class
    ├── GuestNotBuilt            the wasm guest is missing; the message names the build command
    ├── OutOfFuel                more instructions than SandboxLimits.fuel
    ├── WallTimeExceeded         longer than SandboxLimits.wall_time_ms (epoch deadline)
    ├── MemoryLimitExceeded      more memory than SandboxLimits.memory_bytes
    ├── GuestError               the JS threw or did not compile (.name, .message, .line, .logs)
    ├── CapabilityDenied         asked for a file or host that was not granted
    └── OutputInvalid            result too large (max_output_bytes) or malformed

wasmtime traps and errors are translated with ``raise X(...) from e``.
"""

from nexflow.sandbox.errors import (
    CapabilityDenied,
    GuestError,
    GuestNotBuilt,
    MemoryLimitExceeded,
    OutOfFuel,
    OutputInvalid,
    SandboxError,
    WallTimeExceeded,
)
from nexflow.sandbox.guest import BUILD_COMMAND, DEFAULT_GUEST_PATH, build_guest
from nexflow.sandbox.models import (
    Capabilities,
    Effect,
    EmitEffect,
    EvalResult,
    HandlerOutcome,
    JSONObject,
    JSONValue,
    SandboxLimits,
    ViewEffect,
)

__all__ = [
    "BUILD_COMMAND",
    "DEFAULT_GUEST_PATH",
    "Capabilities",
    "CapabilityDenied",
    "Effect",
    "EmitEffect",
    "EvalResult",
    "GuestError",
    "GuestNotBuilt",
    "HandlerOutcome",
    "JSONObject",
    "JSONValue",
    "MemoryLimitExceeded",
    "OutOfFuel",
    "OutputInvalid",
    "SandboxError",
    "SandboxLimits",
    "ViewEffect",
    "WallTimeExceeded",
    "build_guest",
]
