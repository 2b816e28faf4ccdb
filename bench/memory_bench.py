"""Memory benchmark: search latency over 10k and 100k items of one user.

Usage: python bench/memory_bench.py [--sizes 10000,100000] [--queries 200] [--dims 256]
Target (issue 7): median search ≤ 20 ms at 100k items.

Items are synthetic 12-word sentences over a 20,000-word Zipf-like vocabulary, split over
daily-note files of 1,000 items; a second user holds as many items again (search filters
them out). Vectors come from the fake hashed bag-of-words embedder, computed in process,
so the figures are the index's own cost: ``keyword`` (FTS5 BM25), ``hybrid`` (BM25 +
sqlite-vec KNN + fusion, query vector given) and ``service`` (MemoryService.search: file
check, thread hop, in-process embedding of the query, hybrid search).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nexflow.memory import MemoryService  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--dims", type=int, default=256)
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        asyncio.run(run(size, args.queries, args.dims))


if __name__ == "__main__":
    main()
