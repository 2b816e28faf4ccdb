"""The bilingual recall set (data/bilingual_recall.yaml) and its scoring.

Shared by tests/memory/test_bilingual_recall.py and bench/recall_bench.py, so the test's
floors and the benchmark's table come from the same items, queries and arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from nexflow.memory import MemoryService

DATA = Path(__file__).parent / "data" / "bilingual_recall.yaml"
Slice = Literal["en", "ru", "cross"]
SLICES: tuple[str, ...] = ("en", "ru", "cross", "all")


@dataclass(frozen=True, slots=True)
class Query:
    text: str
    lang: str
    relevant: frozenset[int]
    slice: Slice


@dataclass(frozen=True, slots=True)
class RecallSet:
    items: dict[int, str]  # id -> text
    queries: list[Query]


def load(path: Path = DATA) -> RecallSet:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    items = {int(row["id"]): str(row["text"]) for row in raw["items"]}
    langs = {int(row["id"]): str(row["lang"]) for row in raw["items"]}
    queries = []
    for row in raw["queries"]:
        relevant = frozenset(int(i) for i in row["relevant"])
        lang = str(row["lang"])
        same = all(langs[i] == lang for i in relevant)
        cut: Slice = ("en" if lang == "en" else "ru") if same else "cross"
        queries.append(Query(str(row["q"]), lang, relevant, cut))
    return RecallSet(items, queries)


@dataclass(frozen=True, slots=True)
class Score:
    recall_at_3: float
    mrr: float
    n: int


def score(ranked: Sequence[Sequence[int]], queries: Sequence[Query]) -> dict[str, Score]:
    """recall@3 (a relevant item among the top 3) and MRR (over the ranking given), by slice."""
    out: dict[str, Score] = {}
    for name in SLICES:
        rows = [(r, q) for r, q in zip(ranked, queries, strict=True) if name in ("all", q.slice)]
        hits = sum(any(i in q.relevant for i in r[:3]) for r, q in rows)
        rr = sum(
            next((1 / (k + 1) for k, i in enumerate(r) if i in q.relevant), 0.0) for r, q in rows
        )
        out[name] = Score(hits / len(rows), rr / len(rows), len(rows))
    return out


def write_memory(memory: MemoryService, user_id: str, data: RecallSet) -> dict[str, int]:
    """Write the items as one MEMORY.md bullet list; returns text -> item id."""
    folder = memory.folder(user_id)
    folder.mkdir(parents=True, exist_ok=True)
    lines = "".join(f"- {text}\n" for text in data.items.values())
    (folder / "MEMORY.md").write_text("# Facts\n\n" + lines, encoding="utf-8")
    return {text: item_id for item_id, text in data.items.items()}


async def ranked_by_service(
    memory: MemoryService, data: RecallSet, k: int = 10, user_id: str = "alice"
) -> list[list[int]]:
    """Each query's ranking through ``MemoryService.search`` (hybrid or keyword-only)."""
    ids = write_memory(memory, user_id, data)
    ranked = []
    for query in data.queries:
        result = await memory.search(user_id, query.text, k)
        ranked.append([ids.get(hit.item.text, -1) for hit in result.hits])
    return ranked


def ranked_by_vectors(
    items: dict[int, Sequence[float]], queries: Sequence[Sequence[float]]
) -> list[list[int]]:
    """Each query's ranking of every item by cosine similarity (unit vectors: dot product)."""
    ranked = []
    for q in queries:
        sims = {i: sum(a * b for a, b in zip(q, v, strict=True)) for i, v in items.items()}
        ranked.append(sorted(sims, key=lambda i: -sims[i]))
    return ranked


Ranker = Callable[[RecallSet], list[list[int]]]
