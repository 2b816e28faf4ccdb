"""Memory benchmark: search latency over 10k and 100k items of one user; context paging.

Usage: python bench/memory_bench.py [--sizes 10000,100000] [--queries 200] [--dims 256]
       python bench/memory_bench.py paging [--turns 300] [--runs 3] [--budget 8000]
Target (issue 7): median search ≤ 20 ms at 100k items.

Items are synthetic 12-word sentences over a 20,000-word Zipf-like vocabulary, split over
daily-note files of 1,000 items; a second user holds as many items again (search filters
them out). Vectors come from the fake hashed bag-of-words embedder, computed in process,
so the figures are the index's own cost: ``keyword`` (FTS5 BM25), ``hybrid`` (BM25 +
sqlite-vec KNN + fusion, query vector given) and ``service`` (MemoryService.search: file
check, thread hop, in-process embedding of the query, hybrid search).

``paging``: one session of ``--turns`` turns as the gateway drives it ("hi", "Echo: hi"),
on real storage and a keyword-only memory.db, the summarising model answering in process;
per turn, ``ContextPager.prepare`` before the turn's messages are written and
``after_turn`` after. Prints the medians over all turns and over the last 100, per run.
``--text`` makes every message longer, so the session passes the budget and pages out.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import structlog

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nexflow.bus.events import InboundEvent, TextOut  # noqa: E402
from nexflow.config.model import MemoryConfig  # noqa: E402
from nexflow.llm.client import LLMClient, LLMRequest, LLMResponse  # noqa: E402
from nexflow.memory import MemoryService  # noqa: E402
from nexflow.memory.paging import ContextPager  # noqa: E402
from nexflow.storage import SQLStorage  # noqa: E402
from nexflow.storage.base import NewMessage  # noqa: E402
from nexflow.testing.fake_llm import fake_embedding  # noqa: E402


class InProcessEmbedder:
    def __init__(self, dims: int) -> None:
        self.dims = dims

    @property
    def name(self) -> str:
        return f"fake-{self.dims}"

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [fake_embedding(t, self.dims) for t in texts]

    async def close(self) -> None:
        return None


def corpus(n: int, rng: random.Random) -> list[str]:
    # Content words only (queries drop stop words): Zipf over 20,000 words without the
    # 50 most frequent ranks, so the commonest word is in ~1% of items, as in real notes.
    vocab = [f"w{i}x" for i in range(20_000)]
    weights = [1 / (i + 50) for i in range(len(vocab))]
    return [" ".join(rng.choices(vocab, weights, k=12)) for _ in range(n)]


def write_notes(folder: Path, texts: list[str]) -> None:
    """Daily notes of 1,000 bullets each, as memory_save would have written them."""
    folder.mkdir(parents=True)
    for start in range(0, len(texts), 1_000):
        day = date(2000, 1, 1) + timedelta(days=start // 1_000)
        bullets = "".join(f"- {t}\n" for t in texts[start : start + 1_000])
        (folder / f"{day.isoformat()}.md").write_text(f"# {day}\n\n{bullets}")


def timed(fn: object, runs: list[tuple[str, list[float]]]) -> list[float]:
    out = []
    for query, vector in runs:
        t0 = time.perf_counter()
        fn(query, vector)  # type: ignore[operator]
        out.append((time.perf_counter() - t0) * 1000)
    return out


def report(name: str, ms: list[float]) -> None:
    ms = sorted(ms)
    p90 = ms[int(len(ms) * 0.9) - 1]
    print(f"  {name:<8} median {statistics.median(ms):6.2f} ms   p90 {p90:6.2f} ms")


async def run(size: int, queries: int, dims: int) -> None:
    rng = random.Random(size)
    with tempfile.TemporaryDirectory() as tmp:
        service = MemoryService(Path(tmp) / "memory.db", Path(tmp) / "ws", InProcessEmbedder(dims))
        texts = corpus(size, rng)
        write_notes(service.folder("alice"), texts)
        write_notes(service.folder("bob"), corpus(size, rng))
        await service.start()
        t0 = time.perf_counter()
        for user in ("alice", "bob"):  # the first search indexes and embeds the files
            await service.search(user, "warm up", 1)
        built = time.perf_counter() - t0
        print(
            f"{size:,} items per user ({2 * size:,} in total), {dims} dims, "
            f"indexed and embedded in {built:.0f} s"
        )

        picks = [rng.sample(rng.choice(texts).split(), 3) for _ in range(queries)]
        runs = [(" ".join(p), fake_embedding(" ".join(p), dims)) for p in picks]
        index = service.index  # the service is idle: its connection may be used from here
        report("keyword", timed(lambda q, v: index.search("alice", q, 5, None), runs))
        report("hybrid", timed(lambda q, v: index.search("alice", q, 5, v), runs))
        ms = []
        for query, _ in runs:
            t0 = time.perf_counter()
            result = await service.search("alice", query, 5)
            ms.append((time.perf_counter() - t0) * 1000)
            assert result.mode == "hybrid" and result.hits
        report("service", ms)
        await service.stop()


class InProcessSummarizer:
    """The ``summarize`` route answering at once, as a model that always has a summary."""

    async def client_for(self, route: str = "execute") -> LLMClient:
        return self

    async def complete(self, request: LLMRequest, *args: object, **kwargs: object) -> LLMResponse:
        return LLMResponse('{"summary": "An earlier exchange.", "facts": []}', "bench")


async def paging_run(turns: int, budget: int, text: str, tmp: Path) -> list[tuple[float, float]]:
    """(prepare, after_turn) in ms for each turn of one session."""
    storage = SQLStorage(tmp / "nexflow.db")
    await storage.open()
    memory = MemoryService(tmp / "memory.db", tmp / "ws", None)
    await memory.start()
    config = MemoryConfig(context_budget_tokens=budget)
    pager = ContextPager(storage, memory, InProcessSummarizer(), config)
    user = await storage.create_user("bench", "owner", "web", "bench")
    session = await storage.ensure_session(None, user, "web", "c")
    out: list[tuple[float, float]] = []
    try:
        for _ in range(turns):
            message = f"hi {text}".strip()
            event = InboundEvent(
                channel="web", chat_id="c", sender_id="bench", message=message,
                user_id=user, session_id=session.id,
            )  # fmt: skip
            inbox_id, _ = await storage.accept(event)
            t0 = time.perf_counter()
            await pager.prepare(session, message)
            t1 = time.perf_counter()
            reply = f"Echo: {message}"
            await storage.complete(
                inbox_id,
                [NewMessage("user", message), NewMessage("assistant", reply)],
                TextOut(channel="web", chat_id="c", session_id=session.id, text=reply),
            )
            t2 = time.perf_counter()
            await pager.after_turn(session)
            t3 = time.perf_counter()
            out.append(((t1 - t0) * 1000, (t3 - t2) * 1000))
        pages = len(await pager.pages(session.id))
        print(f"    {pages} page(s) paged out")
    finally:
        await memory.stop()
        await storage.close()
    return out


def paging_report(runs: list[list[tuple[float, float]]]) -> None:
    def line(name: str, rows: list[list[tuple[float, float]]]) -> None:
        prep = [statistics.median(p for p, _ in r) for r in rows]
        after = [statistics.median(a for _, a in r) for r in rows]
        both = [statistics.median(p + a for p, a in r) for r in rows]
        print(
            f"  {name:<14} prepare {statistics.median(prep):6.3f} ms   "
            f"after_turn {statistics.median(after):6.3f} ms   "
            f"sum {statistics.median(both):6.3f} ms   "
            f"(per run: {', '.join(f'{b:.3f}' for b in both)})"
        )

    line("all turns", runs)
    line("last 100 turns", [r[-100:] for r in runs])


def paging(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description="context paging: per-turn pager cost")
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--budget", type=int, default=8000)
    parser.add_argument("--text", type=int, default=0, help="extra characters per message")
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    text = ("lorem ipsum dolor sit amet " * (args.text // 27 + 1))[: args.text]
    print(f"paging: {args.turns} turns, budget {args.budget}, {len(text) + 3} chars per message")
    runs = []
    for n in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            print(f"  run {n + 1}")
            runs.append(asyncio.run(paging_run(args.turns, args.budget, text, Path(tmp))))
    paging_report(runs)


def main() -> None:
    if sys.argv[1:2] == ["paging"]:
        paging(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--dims", type=int, default=256)
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        asyncio.run(run(size, args.queries, args.dims))


if __name__ == "__main__":
    main()
