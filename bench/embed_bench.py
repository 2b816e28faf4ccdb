"""Local embedding benchmark: the in-process model through ``LocalEmbedder``.

Usage: python bench/embed_bench.py [--model multilingual-e5-small] [--runs 5] [--texts 256]
                                   [--loads 3] [--json FILE]

``--model`` is ``multilingual-e5-small`` (the default, extra embed-local) or
``all-MiniLM-L6-v2`` (torch, extra embed-torch). Bilingual recall and the comparison of
the candidate models are in bench/recall_bench.py. Figures, medians of the runs:
- ``load``: a fresh interpreter's first ``LocalEmbedder.embed`` of one short text (imports
  the model's package, reads the weights, runs the model once), and the RSS it added;
- ``throughput``: texts per second at batch sizes 1, 16 and 64 (``LocalEmbedder.embed``
  called with that many texts at a time, one batch through the model) over ``--texts``
  note-like texts of 8-30 words; the RSS the model and its batches added to this process;
- ``search``: ``MemoryService.search`` with the local model on a warm index (the first
  search after start-up also pays the load above);
- ``recall@3`` on the labelled set of tests/memory/test_recall.py: keyword-only, hybrid
  with the local model, and the model's vector ranking alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nexflow.memory import MemoryService  # noqa: E402
from nexflow.memory.local_embedder import LocalEmbedder  # noqa: E402
from tests.memory.test_recall import FACTS, QUERIES, recall_at_3  # noqa: E402

LOAD_PROBE = """
import asyncio, json, sys, time
from nexflow.memory.local_embedder import LocalEmbedder
def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
async def main():
    embedder = LocalEmbedder(sys.argv[1])
    before = rss_mb()
    t0 = time.perf_counter()
    await embedder.embed(["warm up"])
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "rss_before": before, "rss_added": rss_mb() - before}))
    await embedder.close()
asyncio.run(main())
"""


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def texts(n: int, rng: random.Random) -> list[str]:
    """Note-like sentences: the labelled facts' words reshuffled, 8-30 words each."""
    words = " ".join(FACTS).split()
    return [" ".join(rng.choices(words, k=rng.randint(8, 30))) for _ in range(n)]


def load_figures(loads: int, model: str) -> dict[str, float]:
    seconds, added = [], []
    for _ in range(loads):
        out = subprocess.run(
            [sys.executable, "-c", LOAD_PROBE, model],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        probe = json.loads(out.stdout.strip().splitlines()[-1])
        seconds.append(probe["seconds"])
        added.append(probe["rss_added"])
        print(f"  load run: {probe['seconds']:.2f} s, +{probe['rss_added']:.0f} MB RSS")
    return {"load_s": statistics.median(seconds), "load_rss_added_mb": statistics.median(added)}


async def throughput(
    embedder: LocalEmbedder, batch: int, corpus: Sequence[str], runs: int
) -> float:
    rates = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for start in range(0, len(corpus), batch):
            await embedder.embed(corpus[start : start + batch])
        rates.append(len(corpus) / (time.perf_counter() - t0))
    return statistics.median(rates)


class Borrowed:
    def __init__(self, inner: LocalEmbedder) -> None:
        self.inner = inner

    @property
    def name(self) -> str:
        return self.inner.name

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return await self.inner.embed(texts)

    async def close(self) -> None:
        return None


async def recall_and_search(embedder: LocalEmbedder, runs: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        keyword = MemoryService(Path(tmp) / "k.db", Path(tmp) / "k", None)
        await keyword.start()
        figures["recall_keyword"] = await recall_at_3(keyword)
        await keyword.stop()

        hybrid = MemoryService(Path(tmp) / "h.db", Path(tmp) / "h", Borrowed(embedder))
        await hybrid.start()
        figures["recall_hybrid"] = await recall_at_3(hybrid)
        ms = []
        for _ in range(runs):
            for query, _ in QUERIES:
                t0 = time.perf_counter()
                await hybrid.search("alice", query, 3)
                ms.append((time.perf_counter() - t0) * 1000)
        figures["search_ms"] = statistics.median(ms)
        await hybrid.stop()

    # The model alone: rank the facts by cosine similarity to each question.
    facts = await embedder.embed(FACTS)
    hits = 0
    for query, answer in QUERIES:
        (q,) = await embedder.embed([query])
        scores = [sum(a * b for a, b in zip(q, f, strict=True)) for f in facts]
        top3 = sorted(range(len(FACTS)), key=lambda i: -scores[i])[:3]
        hits += answer in top3
    figures["recall_vector_only"] = hits / len(QUERIES)
    return figures


async def run(args: argparse.Namespace) -> dict[str, float]:
    figures: dict[str, float] = {}
    print(f"load ({args.loads} fresh interpreters)")
    figures.update(load_figures(args.loads, args.model))

    corpus = texts(args.texts, random.Random(7))
    base = rss_mb()
    # One model; a call with up to 64 texts is one batch through it.
    embedder = LocalEmbedder(args.model, batch_size=64)
    await embedder.embed(corpus[:64])  # load and warm up
    print(f"{embedder.name}, loaded in {embedder.load_seconds:.2f} s here")
    print(f"throughput ({args.texts} texts, {args.runs} runs each)")
    for batch in (1, 16, 64):
        rate = await throughput(embedder, batch, corpus, args.runs)
        figures[f"texts_per_s_batch_{batch}"] = rate
        print(f"  batch {batch:>2}: {rate:7.1f} texts/s")
    figures["rss_after_batch_64_mb"] = rss_mb() - base
    figures.update(await recall_and_search(embedder, args.runs))
    await embedder.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="multilingual-e5-small")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--loads", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    figures = asyncio.run(run(args))
    print(
        f"load {figures['load_s']:.2f} s, +{figures['load_rss_added_mb']:.0f} MB RSS; "
        f"model and batches +{figures['rss_after_batch_64_mb']:.0f} MB RSS here\n"
        f"recall@3 keyword-only {figures['recall_keyword']:.2f}, "
        f"hybrid (local) {figures['recall_hybrid']:.2f}, "
        f"vector only {figures['recall_vector_only']:.2f}\n"
        f"MemoryService.search with the local model (warm): {figures['search_ms']:.1f} ms"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
