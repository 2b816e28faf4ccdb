"""Gateway benchmark: round trip, own share, throughput, cold start, RSS, prompt size.

Drives a real ``nexflow serve`` process over HTTP on 127.0.0.1 against the scripted
fake LLM (``nexflow.testing.fake_llm``, its own process, zero latency), then the bus
in-process, and prints each figure next to its target from issue 2::

    .venv/bin/python bench/gateway_bench.py            # full run, a few minutes
    .venv/bin/python bench/gateway_bench.py --quick    # smoke run, under a minute
    .venv/bin/python bench/gateway_bench.py --json out.json
    .venv/bin/python bench/gateway_bench.py --venv /tmp/clone/.venv   # a default install

"Own share" is the round trip minus the time the gateway spent inside the LLM client
call, which it reports in the ``Server-Timing: llm;dur=…`` header of ``POST
/api/v1/chat`` (and as ``TurnSummary.llm_seconds`` on the bus). The bench client runs
on the same machine (aiohttp) and its own CPU time is part of every round trip.

Every child process is stopped on exit, on errors and on SIGTERM (and gets SIGTERM
from the kernel if this script dies); every loop is bounded in count and in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from nexflow.app import build_application
from nexflow.bus.events import InboundEvent
from nexflow.config import load_config
from nexflow.observability.logging import LogHub, configure_logging
from nexflow.testing.fake_llm import FakeLLMServer

HOST = "127.0.0.1"
VENV_BIN = Path(sys.executable).parent
RELAY = Path(__file__).with_name("relay.py")
RELAY_FASTAPI = Path(__file__).with_name("relay_fastapi.py")


@dataclass(frozen=True)
class Plan:
    warmup: int = 20
    rt_messages: int = 300
    levels: tuple[int, ...] = (1, 16, 64, 256)
    duration_s: float = 10.0
    rss_messages: int = 1000
    cold_runs: int = 5
    bus_messages: int = 300
    bus_duration_s: float = 5.0
    baseline_calls: int = 300
    prompt_turns: int = 25
    per_worker_cap: int = 20_000  # bound on any timed loop, whatever the duration


FULL = Plan()
QUICK = Plan(
    warmup=10,
    rt_messages=60,
    duration_s=2.0,
    levels=(1, 16, 64),
    rss_messages=300,
    cold_runs=2,
    bus_messages=60,
    bus_duration_s=1.5,
    baseline_calls=60,
    prompt_turns=5,
)


class BenchError(RuntimeError):
    """The gateway or the fake LLM did something the bench cannot measure around."""


# -- statistics ---------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no data."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


# -- child processes ----------------------------------------------------------------


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Children:
    """Owns every subprocess the bench starts; :meth:`close` stops them all."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._procs: list[asyncio.subprocess.Process] = []

    async def spawn(
        self, argv: list[str], env: dict[str, str], log: Path, *, pipe_stdout: bool = False
    ) -> asyncio.subprocess.Process:
        with log.open("wb") as sink:  # the child keeps its own descriptor
            proc = await asyncio.create_subprocess_exec(
                *argv,
                env=env,
                cwd=self.workdir,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE if pipe_stdout else sink,
                stderr=sink,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        self._procs.append(proc)
        return proc

    async def stop(
        self, proc: asyncio.subprocess.Process, timeout_s: float = 10.0, sig: int = signal.SIGTERM
    ) -> None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            try:
                await asyncio.wait_for(proc.wait(), timeout_s)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await asyncio.wait_for(proc.wait(), timeout_s)
        if proc in self._procs:
            self._procs.remove(proc)

    async def close(self) -> None:
        for proc in list(self._procs):
            with contextlib.suppress(Exception):
                await self.stop(proc)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak) of ``pid`` in MB."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = round(int(rest.split()[0]) / 1024, 1)
    return out


def cpu_s(pid: int) -> float:
    """User + system CPU time of ``pid`` (all its threads) in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXFLOW_")}
    env.update({"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
    env.update(extra)
    return env


def gateway_env(home: Path, llm_base: str) -> dict[str, str]:
    return {
        "NEXFLOW_HOME": str(home),
        "NEXFLOW_LLM_MODEL": "openai/fake",
        "NEXFLOW_LLM_API_BASE": llm_base,
        "NEXFLOW_LLM_API_KEY": "x",
        "NEXFLOW_LLM__OLLAMA__PROBE": "false",
        **{k[6:]: v for k, v in os.environ.items() if k.startswith("BENCH_NEXFLOW_")},
    }


async def start_fake_llm(children: Children) -> tuple[asyncio.subprocess.Process, str]:
    argv = [sys.executable, "-m", "nexflow.testing.fake_llm", "--port", "0", "--latency-ms", "0"]
    proc = await children.spawn(
        argv, clean_env({}), children.workdir / "fake_llm.log", pipe_stdout=True
    )
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
    except TimeoutError:
        raise BenchError("the fake LLM did not start within 20 s") from None
    if "listening on " not in line:
        raise BenchError(f"the fake LLM said {line!r} instead of 'listening on …'")
    return proc, line.split("listening on ", 1)[1].strip()


def serve_argv(port: int, profile: Path | None, bin_dir: Path = VENV_BIN) -> list[str]:
    script = bin_dir / "nexflow"
    if profile is not None:
        return [
            sys.executable,
            "-m",
            "cProfile",
            "-o",
            str(profile),
            "-m",
            "nexflow",
            "serve",
            "--port",
            str(port),
        ]
    if script.exists():
        return [str(script), "serve", "--port", str(port)]
    return [sys.executable, "-m", "nexflow", "serve", "--port", str(port)]


@dataclass
class Gateway:
    proc: asyncio.subprocess.Process
    url: str
    log: Path
    startup_s: float  # spawn → first 200 from /health
    startup_cpu_s: float  # the gateway's CPU time (all threads) by then
    spawned_at: float  # time.perf_counter() just before the spawn


Starter = Callable[[str], Awaitable[Gateway]]  # tag → a started server


async def start_gateway(
    children: Children,
    llm_base: str,
    tag: str,
    profile: Path | None = None,
    bin_dir: Path = VENV_BIN,
) -> Gateway:
    home = Path(tempfile.mkdtemp(prefix=f"home-{tag}-", dir=children.workdir))
    port = free_port()
    env = clean_env(gateway_env(home, llm_base))
    argv = serve_argv(port, profile, bin_dir)
    return await start_server(children, argv, env, port, f"gateway-{tag}")


async def start_relay(children: Children, llm_base: str, tag: str, script: Path = RELAY) -> Gateway:
    """The 60-line aiohttp relay (bench/relay.py): the floor for HTTP + JSON in Python; or
    the same relay in FastAPI and uvicorn (bench/relay_fastapi.py), the floor for the
    stack Nexflow's web edge is built on."""
    port = free_port()
    argv = [sys.executable, str(script), "--port", str(port), "--llm", llm_base]
    return await start_server(children, argv, clean_env({}), port, f"{script.stem}-{tag}")


async def start_server(
    children: Children, argv: list[str], env: dict[str, str], port: int, tag: str
) -> Gateway:
    url = f"http://{HOST}:{port}"
    log = children.workdir / f"{tag}.log"
    started = time.perf_counter()
    proc = await children.spawn(argv, env, log)
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=1.0) as client:
        deadline = started + 30
        while time.perf_counter() < deadline:
            if proc.returncode is not None:
                raise BenchError(f"{tag} exited with {proc.returncode}:\n{tail(log)}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/health")).status_code == 200:
                    elapsed = time.perf_counter() - started
                    return Gateway(proc, url, log, elapsed, cpu_s(proc.pid), started)
            await asyncio.sleep(0.005)
    raise BenchError(f"{tag} did not answer /health within 30 s:\n{tail(log)}")


def tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


# -- HTTP load ----------------------------------------------------------------------


@dataclass
class Sample:
    rt_s: float
    llm_ms: float
    total_ms: float


def server_timing(header: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "dur":
                out[name.strip()] = float(value)
    return out


class ChatSession:
    """One conversation: the first message opens a session, the rest continue it."""

    def __init__(self, client: aiohttp.ClientSession) -> None:
        self._client = client
        self.session: str | None = None

    async def send(self, text: str = "hi") -> Sample:
        body: dict[str, Any] = {"message": text}
        if self.session is not None:
            body["session"] = self.session
        started = time.perf_counter()
        async with self._client.post("/api/v1/chat", json=body) as resp:
            raw = await resp.read()
            rt = time.perf_counter() - started
            if resp.status != 200:
                raise BenchError(f"POST /api/v1/chat answered {resp.status}: {raw[:300]!r}")
            timing = server_timing(resp.headers.get("server-timing", ""))
        data = json.loads(raw)
        if data.get("error"):
            raise BenchError(f"the turn failed: {data['error']}: {data.get('reply')}")
        self.session = data["session"]
        return Sample(rt, timing.get("llm", float("nan")), timing.get("total", float("nan")))

    async def health(self) -> None:
        async with self._client.get("/health") as resp:
            resp.raise_for_status()
            await resp.read()


def http_client(url: str, connections: int) -> aiohttp.ClientSession:
    """The load client: aiohttp, whose CPU per request is a fraction of httpx's (the
    client shares the machine's two cores with the server it measures)."""
    return aiohttp.ClientSession(
        base_url=url,
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=60),
    )


def summarize(samples: list[Sample]) -> dict[str, Any]:
    """Round trip and own share; turns answered from the database (llm dur 0) are counted apart."""
    measured = [s for s in samples if s.llm_ms > 0]
    rts = [s.rt_s * 1000 for s in samples]
    own = [s.rt_s * 1000 - s.llm_ms for s in measured]
    server_own = [s.total_ms - s.llm_ms for s in measured]
    llm = [s.llm_ms for s in measured]
    return {
        "n": len(samples),
        "rt_p50_ms": round(med(rts), 3),
        "rt_p99_ms": round(pct(rts, 99), 3),
        "llm_p50_ms": round(med(llm), 3),
        "own_p50_ms": round(med(own), 3),
        "own_p99_ms": round(pct(own, 99), 3),
        "server_own_p50_ms": round(med(server_own), 3),
        "no_llm_timing": len(samples) - len(measured),
    }


async def run_sessions(
    make: Callable[[], Awaitable[Callable[[], Awaitable[Sample]]]],
    sessions: int,
    duration_s: float,
    cap: int,
    pid: int,
) -> dict[str, Any]:
    """``sessions`` workers each send back-to-back for ``duration_s`` (at most ``cap`` each).

    ``pid`` is the gateway's process: its CPU time per message is reported too.
    """
    senders = [await make() for _ in range(sessions)]
    for send in senders:  # open every session before the clock starts
        await send()
    samples: list[Sample] = []
    cpu0 = cpu_s(pid)
    started = time.perf_counter()
    deadline = started + duration_s

    async def worker(send: Callable[[], Awaitable[Sample]]) -> None:
        for _ in range(cap):
            if time.perf_counter() >= deadline:
                return
            samples.append(await send())

    await asyncio.wait_for(asyncio.gather(*(worker(s) for s in senders)), duration_s + 120)
    elapsed = time.perf_counter() - started
    cpu = cpu_s(pid) - cpu0
    out = summarize(samples)
    out["cpu_ms_per_msg"] = round(cpu * 1000 / max(1, len(samples)), 2)
    out.update(
        {
            "sessions": sessions,
            "elapsed_s": round(elapsed, 2),
            "msg_per_s": round(len(samples) / elapsed, 1),
        }
    )
    return out


async def bench_http(
    children: Children, start: Starter, plan: Plan, profile: bool
) -> dict[str, Any]:
    gw = await start("main")
    pid = gw.proc.pid
    result: dict[str, Any] = {}
    try:
        await asyncio.sleep(1.0)
        result["rss_idle_mb"] = rss_mb(pid)["VmRSS"]
        async with http_client(gw.url, max(plan.levels) * 2) as client:
            floor = []  # the HTTP stack alone, before litellm is loaded
            probe = ChatSession(client)
            for _ in range(120):
                t = time.perf_counter()
                await probe.health()
                floor.append((time.perf_counter() - t) * 1000)
            result["health_rt_p50_ms"] = round(med(floor[20:]), 3)
            one = ChatSession(client)
            first = time.perf_counter()
            await one.send()
            result["first_message_s"] = round(time.perf_counter() - first, 3)
            for _ in range(plan.warmup - 1):
                await one.send()
            result["rss_after_first_mb"] = rss_mb(pid)["VmRSS"]
            cpu0 = cpu_s(pid)
            result["roundtrip"] = summarize([await one.send() for _ in range(plan.rt_messages)])
            sequential_cpu = (cpu_s(pid) - cpu0) * 1000 / plan.rt_messages
            result["roundtrip"]["cpu_ms_per_msg"] = round(sequential_cpu, 3)
            sent = plan.warmup + plan.rt_messages

            # top up to plan.rss_messages (16 sessions at a time), then read RSS
            remaining = max(0, plan.rss_messages - sent)
            fill = [ChatSession(client) for _ in range(16)]

            async def filler(session: ChatSession, count: int) -> None:
                for _ in range(count):
                    await session.send()

            share = [remaining // 16 + (1 if i < remaining % 16 else 0) for i in range(16)]
            await asyncio.wait_for(
                asyncio.gather(*(filler(s, n) for s, n in zip(fill, share, strict=True))), 600
            )
            sent += remaining
            result["rss_after_n"] = {"messages": sent, **rss_mb(pid)}

            async def make() -> Callable[[], Awaitable[Sample]]:
                return ChatSession(client).send

            levels = []
            for n in plan.levels:
                # the sessions before this level page out old turns in the background
                # (summaries, embeddings): let that finish so it is not counted here
                result.setdefault("quiesce_s", []).append(await quiesce(pid))
                levels.append(
                    await run_sessions(make, n, plan.duration_s, plan.per_worker_cap, pid)
                )
            result["levels"] = levels
        result["rss_end"] = rss_mb(pid)
    finally:
        # uvicorn re-raises SIGTERM after a clean shutdown, which would kill cProfile before
        # it writes; SIGINT ends as KeyboardInterrupt, and cProfile writes on the way out.
        await children.stop(gw.proc, sig=signal.SIGINT if profile else signal.SIGTERM)
    return result


async def quiesce(pid: int, limit_s: float = 60.0) -> float:
    """Wait until ``pid`` uses under 5% of a CPU over half a second; the seconds waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        before = cpu_s(pid)
        await asyncio.sleep(0.5)
        if cpu_s(pid) - before < 0.025:
            break
    return round(time.perf_counter() - started, 1)


async def bench_cold_start(children: Children, start: Starter, runs: int) -> dict[str, Any]:
    """Spawn → /health (wall and the gateway's CPU: the CPU time varies less with the
    machine's load), then spawn → the reply to a first message sent right after /health."""
    times, cpus, replies, idle = [], [], [], []
    for i in range(runs):
        gw = await start(f"cold{i}")
        try:
            times.append(gw.startup_s)
            cpus.append(gw.startup_cpu_s)
            async with http_client(gw.url, 1) as client:
                await ChatSession(client).send()
            replies.append(time.perf_counter() - gw.spawned_at)
            await asyncio.sleep(0.5)
            idle.append(rss_mb(gw.proc.pid)["VmRSS"])
        finally:
            await children.stop(gw.proc)
    return {
        "runs_s": [round(t, 3) for t in times],
        "p50_s": round(med(times), 3),
        "cpu_p50_s": round(med(cpus), 3),
        "first_reply_p50_s": round(med(replies), 3),
        "idle_rss_p50_mb": round(med(idle), 1),
    }


async def bench_relay(children: Children, start: Starter, plan: Plan) -> dict[str, Any]:
    """The same cold start and HTTP load against the relay: the floor, in the same run."""
    return {
        "cold_start": await bench_cold_start(children, start, plan.cold_runs),
        "http": await bench_http(children, start, plan, False),
    }


# -- in-process: the bus, the prompt, the LLM client alone ---------------------------


@contextlib.asynccontextmanager
async def inprocess_app(workdir: Path, llm_base: str, tag: str) -> AsyncIterator[Any]:
    """An Application built as ``serve`` builds it; logs (info, JSON) go to a file."""
    home = Path(tempfile.mkdtemp(prefix=f"home-{tag}-", dir=workdir))
    with (workdir / f"inprocess-{tag}.log").open("a") as sink:
        with contextlib.redirect_stderr(sink):
            configure_logging("info", "json", LogHub())
        app = build_application(load_config(None, gateway_env(home, llm_base)), LogHub())
        await app.start()
        try:
            yield app
        finally:
            await app.stop()


class BusSession:
    def __init__(self, app: Any, chat_id: str) -> None:
        self._app = app
        self._chat_id = chat_id
        self.session: str | None = None

    async def send(self) -> Sample:
        event = InboundEvent(
            channel="web",
            chat_id=self._chat_id,
            sender_id="owner",
            message="hi",
            session_id=self.session,
        )
        started = time.perf_counter()
        accepted = await self._app.gateway.publish(event)
        summary = await self._app.gateway.wait_reply(accepted.inbox_id, 30)
        rt = time.perf_counter() - started
        if summary is None:
            raise BenchError("no reply on the bus within 30 s")
        if summary.error:
            raise BenchError(f"the turn failed on the bus: {summary.error}: {summary.reply}")
        self.session = accepted.session_id
        return Sample(rt, summary.llm_seconds * 1000, float("nan"))


async def bench_bus(workdir: Path, llm_base: str, plan: Plan) -> dict[str, Any]:
    async with inprocess_app(workdir, llm_base, "bus") as app:
        one = BusSession(app, "b")
        for _ in range(plan.warmup):
            await one.send()
        result: dict[str, Any] = {
            "roundtrip": summarize([await one.send() for _ in range(plan.bus_messages)])
        }
        counter = iter(range(1_000_000))

        async def make() -> Callable[[], Awaitable[Sample]]:
            return BusSession(app, f"b{next(counter)}").send

        result["levels"] = [
            await run_sessions(make, n, plan.bus_duration_s, plan.per_worker_cap, os.getpid())
            for n in plan.levels
        ]
    return result


async def bench_prompt(workdir: Path, turns: int) -> dict[str, Any]:
    """What the gateway sends the model for a bare "hi" in a new session, and after ``turns``."""
    import litellm  # seconds to import: only the steps that need it pay

    def count(body: dict[str, Any]) -> int:
        messages, tools = body.get("messages", []), body.get("tools") or None
        return int(litellm.token_counter(model="gpt-4o-mini", messages=messages, tools=tools))

    server = FakeLLMServer()
    base = await server.start()
    try:
        async with inprocess_app(workdir, base, "prompt") as app:
            session = BusSession(app, "p")
            await session.send()
            first = server.requests[-1]
            for _ in range(turns):
                await session.send()
            later = server.requests[-1]
    finally:
        await server.stop()
    messages, tools = first.get("messages", []), first.get("tools") or []
    return {
        "tokens": count(first),
        "messages": len(messages),
        "system_chars": sum(
            len(str(m.get("content") or "")) for m in messages if m.get("role") == "system"
        ),
        "tools": [t["function"]["name"] for t in tools],
        "tool_schema_chars": len(json.dumps(tools)),
        "later": {
            "turn": turns + 1,
            "messages": len(later.get("messages", [])),
            "tokens": count(later),
        },
    }


def steady_history(turns: int) -> list[dict[str, Any]]:
    """A system prompt, ``turns`` earlier exchanges and a new "hi": what a long session sends."""
    system = {"role": "system", "content": "You are Nexflow, a self-hosted assistant. " * 5}
    pairs = [
        m
        for _ in range(turns)
        for m in ({"role": "user", "content": "hi"}, {"role": "assistant", "content": "Echo: hi"})
    ]
    return [system, *pairs, {"role": "user", "content": "hi"}]


async def timed(call: Callable[[], Awaitable[None]], n: int, warmup: int = 10) -> dict[str, float]:
    """Wall time per call (p50, p99) and this process's CPU per call (all threads)."""
    for _ in range(warmup):
        await call()
    walls: list[float] = []
    cpu0 = time.process_time()
    for _ in range(n):
        t = time.perf_counter()
        await call()
        walls.append((time.perf_counter() - t) * 1000)
    await asyncio.sleep(0.2)  # litellm finishes its logging callbacks in the background
    cpu = (time.process_time() - cpu0) * 1000 / n
    return {
        "p50_ms": round(med(walls), 3),
        "p99_ms": round(pct(walls, 99), 3),
        "cpu_ms": round(cpu, 3),
    }


async def bench_baseline(llm_base: str, calls: int) -> dict[str, Any]:
    """The LLM-client cost alone, called as the gateway calls it (streaming), and raw httpx."""
    import litellm  # seconds to import: only the steps that need it pay

    litellm.suppress_debug_info = True
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_time",
                "description": "The current date and time.",
                "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}},
            },
        }
    ]
    short = [{"role": "user", "content": "hi"}]
    long = steady_history(20)

    def via_litellm(messages: list[dict[str, Any]]) -> Callable[[], Awaitable[None]]:
        async def call() -> None:
            stream = await litellm.acompletion(
                model="openai/fake",
                api_base=llm_base,
                api_key="x",
                messages=messages,
                tools=tools,
                stream=True,
                stream_options={"include_usage": True},
                num_retries=0,
                timeout=30,
            )
            async for _ in stream:
                pass

        return call

    async with httpx.AsyncClient(trust_env=False, timeout=30) as client:

        async def raw() -> None:
            body = {"model": "fake", "messages": long, "tools": tools, "stream": True}
            async with client.stream("POST", f"{llm_base}/chat/completions", json=body) as resp:
                resp.raise_for_status()
                async for _ in resp.aiter_lines():
                    pass

        return {
            "litellm_1msg": await timed(via_litellm(short), calls),
            f"litellm_{len(long)}msg": await timed(via_litellm(long), calls),
            f"httpx_raw_{len(long)}msg": await timed(raw, calls),
            "history_messages": len(long),
        }


# -- report -------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    value: float
    unit: str
    target: float | None = None  # an upper bound unless at_least
    at_least: bool = False
    verdict: str = field(init=False, default="")

    def __post_init__(self) -> None:
        if self.target is None:
            self.verdict = ""
        elif self.value != self.value:  # NaN
            self.verdict = "n/a"
        else:
            ok = self.value >= self.target if self.at_least else self.value <= self.target
            self.verdict = "PASS" if ok else "MISS"


def rows_for(r: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    if "http" in r:
        h = r["http"]
        rt = h["roundtrip"]
        rows += [
            Row("HTTP round trip p50 (1 session)", rt["rt_p50_ms"], "ms", 15),
            Row("HTTP round trip p99 (1 session)", rt["rt_p99_ms"], "ms"),
            Row("  inside LLM client p50", rt["llm_p50_ms"], "ms"),
            Row("gateway own share p50 (rt - llm)", rt["own_p50_ms"], "ms", 2),
            Row("gateway own share p99 (rt - llm)", rt["own_p99_ms"], "ms"),
            Row("  server-side own share p50 (total - llm)", rt["server_own_p50_ms"], "ms"),
            Row("gateway CPU per message, sequential", rt["cpu_ms_per_msg"], "ms", 3),
        ]
        for lv in h["levels"]:
            n = lv["sessions"]
            rows.append(
                Row(
                    f"HTTP throughput @{n} sessions",
                    lv["msg_per_s"],
                    "msg/s",
                    300 if n == 64 else None,
                    True,
                )
            )
            rows.append(Row(f"  round trip p50 @{n}", lv["rt_p50_ms"], "ms"))
            rows.append(Row(f"  gateway CPU per message @{n}", lv["cpu_ms_per_msg"], "ms"))
        rows += [
            Row("idle RSS after start", h["rss_idle_mb"], "MB", 60),
            Row("  RSS after the first messages", h["rss_after_first_mb"], "MB"),
            Row(
                f"RSS after {h['rss_after_n']['messages']} messages",
                h["rss_after_n"]["VmRSS"],
                "MB",
                100,
            ),
            Row("  peak RSS (VmHWM) at the end", h["rss_end"]["VmHWM"], "MB"),
            Row("  first message (LLM client start-up)", h["first_message_s"] * 1000, "ms"),
            Row("  HTTP floor: GET /health p50 (idle)", h["health_rt_p50_ms"], "ms"),
            Row(
                "  waited for background upkeep (paging) before levels",
                sum(h.get("quiesce_s", [])),
                "s",
            ),
        ]
    if "relay" in r:
        rows += relay_rows(r)
    if "relay_fastapi" in r:
        rows += relay_rows(r, "relay_fastapi", "FastAPI relay")
    if "bus" in r:
        b = r["bus"]
        rows += [
            Row("bus round trip p50 (in-process)", b["roundtrip"]["rt_p50_ms"], "ms"),
            Row("bus own share p50 (rt - llm)", b["roundtrip"]["own_p50_ms"], "ms"),
            Row("bus own share p99 (rt - llm)", b["roundtrip"]["own_p99_ms"], "ms"),
        ]
        for lv in b["levels"]:
            rows.append(Row(f"bus throughput @{lv['sessions']} sessions", lv["msg_per_s"], "msg/s"))
            rows.append(Row(f"  bus own share p50 @{lv['sessions']}", lv["own_p50_ms"], "ms"))
            rows.append(
                Row(f"  process CPU per message @{lv['sessions']}", lv["cpu_ms_per_msg"], "ms")
            )
    if "cold_start" in r:
        cold = r["cold_start"]
        rows.append(
            Row(f"cold start to /health p50 ({len(cold['runs_s'])} runs)", cold["p50_s"], "s", 1.0)
        )
        if "cpu_p50_s" in cold:
            rows += [
                Row("  gateway CPU until /health p50", cold["cpu_p50_s"], "s"),
                Row("  spawn to the first reply p50", cold["first_reply_p50_s"], "s"),
            ]
    if "prompt" in r:
        pr = r["prompt"]
        rows.append(Row('prompt tokens for a bare "hi"', pr["tokens"], "tokens", 1000))
        later = pr["later"]
        rows.append(
            Row(
                f"  prompt tokens at turn {later['turn']} ({later['messages']} messages)",
                later["tokens"],
                "tokens",
            )
        )
    if "baseline" in r:
        base = r["baseline"]
        n = base["history_messages"]
        for key, label in (
            ("litellm_1msg", "litellm stream call, 1 message"),
            (f"litellm_{n}msg", f"litellm stream call, {n} messages"),
            (f"httpx_raw_{n}msg", f"raw httpx SSE POST, {n} messages"),
        ):
            rows.append(Row(f"baseline: {label} p50", base[key]["p50_ms"], "ms"))
            rows.append(Row("  CPU per call (client process)", base[key]["cpu_ms"], "ms"))
    return rows


def relay_rows(r: dict[str, Any], key: str = "relay", label: str = "relay") -> list[Row]:
    """A relay's figures (``relay``: aiohttp; ``relay_fastapi``: FastAPI and uvicorn), and
    Nexflow's over the relay's where both ran."""
    relay_cold, relay_http = r[key]["cold_start"], r[key]["http"]
    rows = [
        Row(f"{label}: cold start to /health p50", relay_cold["p50_s"], "s"),
        Row(
            f"{label}: CPU per message, sequential", relay_http["roundtrip"]["cpu_ms_per_msg"], "ms"
        ),
        Row(f"{label}: round trip p50", relay_http["roundtrip"]["rt_p50_ms"], "ms"),
        *(
            Row(f"{label}: throughput @{lv['sessions']} sessions", lv["msg_per_s"], "msg/s")
            for lv in relay_http["levels"]
        ),
        Row(f"{label}: idle RSS", relay_http["rss_idle_mb"], "MB"),
        Row(f"{label}: RSS after the messages", relay_http["rss_after_n"]["VmRSS"], "MB"),
    ]
    target = 1.5 if key == "relay" else None  # the target is over the aiohttp relay
    if key != "relay" and "relay" in r:
        ratio = relay_cold["p50_s"] / r["relay"]["cold_start"]["p50_s"]
        rows.append(Row(f"cold start, {label} / relay", ratio, "x"))
    if "cold_start" in r:
        ratio = r["cold_start"]["p50_s"] / relay_cold["p50_s"]
        rows.append(Row(f"cold start, Nexflow / {label}", ratio, "x", target))
    if "http" in r:
        mine, floor = r["http"]["roundtrip"], relay_http["roundtrip"]
        rows.append(
            Row(
                f"CPU per message, Nexflow / {label}",
                mine["cpu_ms_per_msg"] / floor["cpu_ms_per_msg"],
                "x",
            )
        )
        rows.append(
            Row(
                f"idle RSS, Nexflow - {label}",
                r["http"]["rss_idle_mb"] - relay_http["rss_idle_mb"],
                "MB",
            )
        )
    return rows


def render(rows: list[Row]) -> str:
    width = max(len(r.name) for r in rows)
    lines = [f"{'figure':<{width}}  {'value':>10}  {'unit':<6} {'target':>10}  result"]
    for r in rows:
        target = "" if r.target is None else f"{'>=' if r.at_least else '<='} {r.target:g}"
        value = f"{r.value:.0f}" if r.unit in ("tokens",) else f"{r.value:.2f}"
        lines.append(f"{r.name:<{width}}  {value:>10}  {r.unit:<6} {target:>10}  {r.verdict}")
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    plan = QUICK if args.quick else FULL
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch
    workdir = Path(tempfile.mkdtemp(prefix="nexflow-bench-"))
    children = Children(workdir)
    result: dict[str, Any] = {"plan": asdict(plan), "machine": machine()}
    only = set(args.only.split(",")) if args.only else None
    try:
        _, llm_base = await start_fake_llm(children)

        bin_dir = args.venv / "bin" if args.venv else VENV_BIN
        result["gateway_bin"] = str(bin_dir)

        async def gateway(tag: str) -> Gateway:
            return await start_gateway(children, llm_base, tag, None, bin_dir)

        async def profiled(tag: str) -> Gateway:
            return await start_gateway(children, llm_base, tag, args.profile, bin_dir)

        async def relay(tag: str) -> Gateway:
            return await start_relay(children, llm_base, tag)

        async def relay_fastapi(tag: str) -> Gateway:
            return await start_relay(children, llm_base, tag, RELAY_FASTAPI)

        steps: list[tuple[str, Callable[[], Awaitable[dict[str, Any]]]]] = [
            ("baseline", lambda: bench_baseline(llm_base, plan.baseline_calls)),
            ("relay", lambda: bench_relay(children, relay, plan)),
            ("relay_fastapi", lambda: bench_relay(children, relay_fastapi, plan)),
            ("cold_start", lambda: bench_cold_start(children, gateway, plan.cold_runs)),
            ("http", lambda: bench_http(children, profiled, plan, args.profile is not None)),
            ("bus", lambda: bench_bus(workdir, llm_base, plan)),
            ("prompt", lambda: bench_prompt(workdir, plan.prompt_turns)),
        ]
        for name, step in steps:
            if only is None or name in only:
                print(f"... {name}", file=sys.stderr, flush=True)
                result[name] = await step()
    finally:
        await children.close()
        if args.keep:
            print(f"logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return result


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    async with asyncio.timeout(args.timeout):
        return await run(args)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="small counts: a smoke run under ~60 s"
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write every figure as JSON")
    parser.add_argument(
        "--only",
        help="comma-separated steps: baseline,relay,relay_fastapi,cold_start,http,bus,prompt",
    )
    parser.add_argument(
        "--timeout", type=float, default=None, help="overall limit in s (default 900, quick 150)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="run the HTTP gateway under cProfile, write its stats here (slows it down)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (logs, databases)"
    )
    parser.add_argument(
        "--venv",
        type=Path,
        metavar="DIR",
        help="run the gateway from this virtualenv (e.g. a default `make run` install made "
        "by install_bench.py --keep) instead of this one, which has the test tools",
    )
    args = parser.parse_args()
    if args.timeout is None:
        args.timeout = 150.0 if args.quick else 900.0
    if args.profile is not None:
        args.profile = args.profile.resolve()
    try:
        result = asyncio.run(amain(args))
    except BenchError as exc:
        print(f"gateway_bench: {exc}", file=sys.stderr)
        return 1
    except (TimeoutError, asyncio.CancelledError):
        print("gateway_bench: stopped (time limit or SIGTERM)", file=sys.stderr)
        return 1
    m = result["machine"]
    print(
        f"nexflow gateway bench — {'quick' if args.quick else 'full'}; "
        f"{m['nproc']} CPUs, Python {m['python']}, load {m['loadavg_at_start']}"
    )
    print(f"gateway run from {result.get('gateway_bin')}")
    print(render(rows_for(result)))
    if args.profile is not None:
        print(f"(profiled run: the HTTP figures are inflated; stats in {args.profile})")
    if args.json:
        result["rows"] = [asdict(r) for r in rows_for(result)]
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
