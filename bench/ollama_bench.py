"""Ollama client benchmark: Nexflow's own client against the official ``ollama`` package.

Usage: python bench/ollama_bench.py [--rounds 5] [--calls 200] [--chunks 50] [--json FILE]

Needs ``pip install ollama`` (not a Nexflow dependency: the figures below kept Nexflow's
own client, docs/benchmarks.md "Ollama client").

Both clients talk to the fake Ollama server (``python -m nexflow.testing.fake_ollama``,
zero model latency) running in its own process, so the CPU time measured here
(``time.process_time``, this process, all threads) is the client's alone. Per call, wall
time (``perf_counter``) and CPU time; each round runs ``--calls`` calls of every scenario
with one client then the other (the order flips every round), after a warm-up; a figure
is the median over all calls of all rounds, and the spread of the per-round medians is
printed too.

- ``current``: :class:`nexflow.llm.ollama.OllamaClient` (aiohttp, hand-written NDJSON);
- ``ollama``: ``ollama.AsyncClient`` (httpx, pydantic models) driven the way a Nexflow
  provider on top of it has to: the same OpenAI → Ollama message translation
  (:func:`~nexflow.llm.ollama.to_ollama_messages`), deltas to a sink, tool calls and
  token counts collected into an :class:`~nexflow.llm.client.LLMResponse`.

Scenarios (the request is a gateway-sized one: a 2,000-character system prompt, six
earlier messages and 12 tool schemas, as a turn of an agent sends):

- ``chat``: non-streamed chat;
- ``stream``: streamed chat of ``--chunks`` content chunks (the fake sends 8 characters
  a chunk) plus the final object, each delta awaited by a sink;
- ``tool_call``: streamed chat whose answer is a ``get_time`` tool call;
- ``embed``: one ``/api/embed`` request of 64 texts of ~200 characters.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ollama  # noqa: E402

from nexflow.llm.client import LLMRequest, LLMResponse, ToolCall, Usage  # noqa: E402
from nexflow.llm.ollama import EMBED_BATCH, OllamaClient, to_ollama_messages  # noqa: E402

MODEL = "llama3.2"
Call = Callable[[], Awaitable[Any]]


def tool(name: str, props: int) -> dict[str, Any]:
    properties: dict[str, Any] = {
        f"arg{i}": {"type": "string", "description": f"argument {i} of {name}, in plain words"}
        for i in range(props)
    }
    properties["options"] = {
        "type": "object",
        "properties": {"limit": {"type": "integer"}, "verbose": {"type": "boolean"}},
    }
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": f"{name}: does one thing for the user and says what it did.",
            "parameters": {"type": "object", "properties": properties, "required": ["arg0"]},
        },
    }


TOOLS = [tool("get_time", 1)] + [tool(f"tool_{i}", 3) for i in range(11)]
HISTORY: list[dict[str, Any]] = [
    {"role": "system", "content": "You are Nexflow, a helpful agent. " * 58},
    {"role": "user", "content": "what is on my list today?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_0",
                "type": "function",
                "function": {"name": "tool_1", "arguments": '{"arg0": "today"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_0", "content": "buy milk; call Ada; ship 0.4"},
    {"role": "assistant", "content": "Three things: buy milk, call Ada, ship 0.4."},
    {"role": "user", "content": "thanks"},
    {"role": "assistant", "content": "You're welcome."},
]


def request(text: str) -> LLMRequest:
    return LLMRequest([*HISTORY, {"role": "user", "content": text}], TOOLS)


async def sink(_: str) -> None:
    return None


class OfficialAdapter:
    """What a Nexflow provider over ``ollama.AsyncClient`` does per call (errors aside)."""

    def __init__(self, base_url: str) -> None:
        self.client = ollama.AsyncClient(host=base_url, timeout=60.0)

    async def complete(self, req: LLMRequest, on_delta: Any = None) -> LLMResponse:
        started = time.perf_counter()
        messages = to_ollama_messages(req.messages)
        tools = list(req.tools) if req.tools else None
        parts: list[str] = []
        calls: list[ToolCall] = []
        if on_delta is None:
            final = await self.client.chat(MODEL, messages, tools=tools, stream=False)
            parts.append(final.message.content or "")
            calls += _calls(final, 0)
        else:
            stream = await self.client.chat(MODEL, messages, tools=tools, stream=True)
            async for final in stream:
                if text := final.message.content:
                    parts.append(text)
                    await on_delta(text)
                calls += _calls(final, len(calls))
        return LLMResponse(
            content="".join(parts),
            model=f"ollama/{MODEL}",
            tool_calls=tuple(calls),
            usage=Usage(final.prompt_eval_count or 0, final.eval_count or 0, 0.0),
            latency_s=time.perf_counter() - started,
        )

    async def embed(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for start in range(0, len(texts), EMBED_BATCH):
            resp = await self.client.embed(MODEL, texts[start : start + EMBED_BATCH])
            out += [list(v) for v in resp.embeddings]
        return out


def _calls(chunk: ollama.ChatResponse, first: int) -> list[ToolCall]:
    return [
        ToolCall(f"call_{first + i}", c.function.name, json.dumps(dict(c.function.arguments)))
        for i, c in enumerate(chunk.message.tool_calls or ())
    ]


def scenarios(
    current: OllamaClient, plain: OllamaClient, official: OfficialAdapter, chunks: int
) -> dict[str, dict[str, Call]]:
    echo = "x" * (8 * chunks - len("Echo: "))  # the fake echoes, 8 characters a chunk
    texts = [f"note {i}: " + "the staging database lives on host stg-db-2. " * 4 for i in range(64)]
    hi, long, time_q = request("hi"), request(echo), request("what time is it?")

    async def check_stream(client: Any) -> None:
        reply = await client.complete(long, sink)
        assert len(reply.content) == 8 * chunks, reply.content[:40]

    async def check_tool(client: Any) -> None:
        reply = await client.complete(time_q, sink)
        assert [c.name for c in reply.tool_calls] == ["get_time"], reply

    async def check_embed(client: Any) -> None:
        assert len(await client.embed(texts)) == 64

    return {
        "chat": {"current": lambda: plain.complete(hi), "ollama": lambda: official.complete(hi)},
        "stream": {
            "current": lambda: check_stream(current),
            "ollama": lambda: check_stream(official),
        },
        "tool_call": {
            "current": lambda: check_tool(current),
            "ollama": lambda: check_tool(official),
        },
        "embed": {"current": lambda: check_embed(current), "ollama": lambda: check_embed(official)},
    }


async def measure(call: Call, n: int) -> tuple[list[float], list[float]]:
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(n):
        w0, c0 = time.perf_counter(), time.process_time()
        await call()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return wall, cpu


def start_fake() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "nexflow.testing.fake_ollama", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise SystemExit(f"the fake Ollama server did not start: {line!r}")
    return proc, line.removeprefix("listening on ")


async def run(rounds: int, calls: int, chunks: int) -> dict[str, Any]:
    proc, base = start_fake()
    current = OllamaClient(f"ollama/{MODEL}", base, stream=True)
    plain = OllamaClient(f"ollama/{MODEL}", base, stream=False)
    official = OfficialAdapter(base)
    table = scenarios(current, plain, official, chunks)
    samples: dict[str, dict[str, dict[str, list[float]]]] = {
        s: {c: {"wall": [], "cpu": [], "wall_rounds": [], "cpu_rounds": []} for c in pair}
        for s, pair in table.items()
    }
    try:
        for pair in table.values():  # warm-up: connections, imports, caches
            for call in pair.values():
                await measure(call, 20)
        for r in range(rounds):
            order = ["current", "ollama"] if r % 2 == 0 else ["ollama", "current"]
            for name, pair in table.items():
                for client in order:
                    wall, cpu = await measure(pair[client], calls)
                    into = samples[name][client]
                    into["wall"] += wall
                    into["cpu"] += cpu
                    into["wall_rounds"].append(statistics.median(wall))
                    into["cpu_rounds"].append(statistics.median(cpu))
    finally:
        await current.aclose()
        await plain.aclose()
        await official.client.close()  # type: ignore[no-untyped-call]  # untyped in ollama
        proc.terminate()
        proc.wait(10)
    return summarise(samples)


def summarise(samples: dict[str, dict[str, dict[str, list[float]]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, pair in samples.items():
        row: dict[str, Any] = {}
        for client, s in pair.items():
            row[client] = {
                "wall_ms": statistics.median(s["wall"]) * 1e3,
                "cpu_ms": statistics.median(s["cpu"]) * 1e3,
                "wall_round_ms": [round(x * 1e3, 3) for x in s["wall_rounds"]],
                "cpu_round_ms": [round(x * 1e3, 3) for x in s["cpu_rounds"]],
                "calls": len(s["wall"]),
            }
        row["diff_wall_ms"] = row["ollama"]["wall_ms"] - row["current"]["wall_ms"]
        row["diff_cpu_ms"] = row["ollama"]["cpu_ms"] - row["current"]["cpu_ms"]
        out[name] = row
    return out


def render(result: dict[str, Any]) -> str:
    lines = [
        "| scenario | current wall | ollama wall | diff wall | current CPU | ollama CPU "
        "| diff CPU | per-round CPU medians (current / ollama) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, row in result.items():
        c, o = row["current"], row["ollama"]
        rounds = f"{', '.join(f'{x:.2f}' for x in c['cpu_round_ms'])} / " + ", ".join(
            f"{x:.2f}" for x in o["cpu_round_ms"]
        )
        lines.append(
            f"| {name} | {c['wall_ms']:.2f} ms | {o['wall_ms']:.2f} ms | "
            f"{row['diff_wall_ms']:+.2f} ms | {c['cpu_ms']:.2f} ms | {o['cpu_ms']:.2f} ms | "
            f"{row['diff_cpu_ms']:+.2f} ms | {rounds} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200, help="calls per scenario per round")
    parser.add_argument("--chunks", type=int, default=50, help="content chunks when streaming")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    load = os.getloadavg()
    result = asyncio.run(run(args.rounds, args.calls, args.chunks))
    print(render(result))
    print(f"\nload average before the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"ollama {version('ollama')}, Python {sys.version.split()[0]}")
    if args.json:
        meta = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "loadavg_before": load,
            "loadavg_after": os.getloadavg(),
            "ollama": version("ollama"),
            "python": sys.version.split()[0],
            "args": vars(args) | {"json": str(args.json)},
        }
        args.json.write_text(json.dumps({"meta": meta, "scenarios": result}, indent=2))


if __name__ == "__main__":
    main()
