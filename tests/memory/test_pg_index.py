"""The Postgres memory index (nexflow/memory/pg_store.py) on the run's real Postgres.

The engine-independent behaviour (recall, tools, paging) runs on both engines through the
``new_index_url`` fixture in conftest.py; this file checks what is Postgres's own: tables
made by two processes at once, per-user write locks, the exact-ranking cap, reconnection,
and the same answers as SQLite where the two must agree (word splitting, stems, pages).
"""

from __future__ import annotations

import math
import random
import sys
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
from structlog.testing import capture_logs

from nexflow.config import load_config
from nexflow.memory import MemoryService, MemoryStoreError, build_memory
from nexflow.memory.embedder import OpenAICompatEmbedder
from nexflow.memory.index import SQLiteItemIndex, open_index
from nexflow.memory.notes import parse
from nexflow.memory.pages import NewPage
from nexflow.memory.pg_store import (
    EXACT_LIMIT,
    EXACT_LIMIT_PURE_PYTHON,
    PgMemoryIndex,
    default_exact_limit,
)
from nexflow.memory.pg_vectors import cosine_similarities
from nexflow.memory.vecblob import float32_blob
from nexflow.testing.fake_llm import FakeLLMServer

NOTE = "# Facts\n\n- The staging database runs on port 5433\n- Coffee: oat flat white #drinks\n"


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetchall()
    return {r[0] for r in rows}


def test_two_processes_open_a_new_schema_at_once(pg_url: str) -> None:
    opened: list[PgMemoryIndex] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def open_one() -> None:  # each its own connection: to the server, a process each
        start.wait()
        try:
            opened.append(PgMemoryIndex(pg_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for index in opened:
        index.close()
    assert errors == [] and len(opened) == 4
    assert tables(pg_url) == {
        "memory_items",
        "memory_files",
        "memory_item_vectors",
        "memory_meta",
        "memory_pages",
        "memory_page_vectors",
    }


def test_two_processes_indexing_one_file_add_its_items_once(pg_url: str) -> None:
    chunks = parse(NOTE)
    indexes = [PgMemoryIndex(pg_url) for _ in range(2)]
    start = threading.Barrier(2)
    ids: list[list[int]] = []

    def index(one: PgMemoryIndex) -> None:
        start.wait()
        ids.append(one.index_file("ada", "memory/ada/MEMORY.md", chunks, (1, len(NOTE))))

    threads = [threading.Thread(target=index, args=(one,)) for one in indexes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert indexes[0].count("ada") == len(chunks) == 2
        assert ids[0] == ids[1]  # the second saw the first's items and kept them
    finally:
        for one in indexes:
            one.close()


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("grafana", "grafana.internal:3000"),  # Postgres's parser would keep a host whole
        ("какой пароля от роутера", "пароль"),  # a Russian stem as a prefix
        ("running", "I run on Tuesdays"),  # English stems, as SQLite's porter
        ("drinks", "Coffee"),  # tags are searched too
    ],
)
async def test_both_engines_find_by_the_same_words(
    keyword_memory: MemoryService, query: str, found: str
) -> None:
    folder = keyword_memory.folder("ada")
    folder.mkdir(parents=True)
    (folder / "MEMORY.md").write_text(
        "# Facts\n\n- Dashboards: grafana.internal:3000\n- Новый пароль от wifi: hunter2\n"
        "- I run on Tuesdays\n- Coffee: oat flat white #drinks\n- Unrelated line\n",
        encoding="utf-8",
    )
    result = await keyword_memory.search("ada", query, 3)
    assert result.mode == "keyword"
    assert result.hits and found in result.hits[0].item.text


async def test_more_vectors_than_the_cap_search_by_keywords_and_say_so(
    tmp_path: Path, fake_llm: FakeLLMServer, pg_url: str
) -> None:
    embedder = OpenAICompatEmbedder(fake_llm.base_url, "openai/fake-embedding", "k")
    memory = MemoryService(tmp_path / "m.db", tmp_path / "ws", embedder, index_url=pg_url)
    await memory.start()
    try:
        folder = memory.folder("ada")
        folder.mkdir(parents=True)
        (folder / "MEMORY.md").write_text(NOTE + "- The cat is called Murzik\n")
        assert (await memory.search("ada", "staging port", 3)).mode == "hybrid"
        index = memory.index
        assert isinstance(index, PgMemoryIndex)
        index.exact_limit = 2
        with capture_logs() as logs:
            first = await memory.search("ada", "staging port", 3)
            second = await memory.search("ada", "cat", 3)
        assert first.mode == second.mode == "keyword"
        assert first.notice == (
            "keyword-only search: 3 memory items are more than the 2 ranked by meaning on Postgres "
            "without pgvector (the server has no pgvector)"
        )
        assert "5433" in first.hits[0].item.text and "Murzik" in second.hits[0].item.text
        assert [e["event"] for e in logs].count("memory_exact_limit") == 1  # once, not per search
        # Another user under the cap keeps hybrid search.
        (memory.folder("bob")).mkdir(parents=True)
        (memory.folder("bob") / "MEMORY.md").write_text("# Facts\n\n- Bob's cat is Tom\n")
        assert (await memory.search("bob", "cat", 3)).mode == "hybrid"
    finally:
        await memory.stop()


@pytest.mark.parametrize("numpy", [True, False])
def test_exact_ranking_with_and_without_numpy(numpy: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not numpy:
        monkeypatch.setitem(sys.modules, "numpy", None)  # import numpy raises ImportError
    rng = random.Random(7)
    vectors = {i: [rng.uniform(-1, 1) for _ in range(16)] for i in range(1, 60)}
    query = [rng.uniform(-1, 1) for _ in range(16)]
    rows: list[tuple[int, bytes]] = [(i, float32_blob(v)) for i, v in vectors.items()]
    rows += [(99, float32_blob([1.0] * 8)), (100, float32_blob([0.0] * 16))]  # width, zero

    def cosine(v: list[float]) -> float:
        dot = sum(a * b for a, b in zip(query, v, strict=True))
        return dot / (math.hypot(*v) * math.hypot(*query))

    expected = sorted(vectors, key=lambda i: -cosine(vectors[i]))[:10]
    got = cosine_similarities(query, rows, 10)
    assert [i for i, _ in got] == expected
    assert all(abs(sim - cosine(vectors[i])) < 1e-5 for i, sim in got)
    assert 99 not in dict(cosine_similarities(query, rows, 100))


async def test_a_dropped_connection_fails_one_call_then_reconnects(pg_url: str) -> None:
    index = PgMemoryIndex(pg_url + "&application_name=nexflow-victim")
    try:
        index.index_file("ada", "memory/ada/MEMORY.md", parse(NOTE), (1, 1))
        with psycopg.connect(pg_url, autocommit=True) as admin:  # as a server restart would
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'nexflow-victim'"
            )
        with pytest.raises(MemoryStoreError, match="memory index database failed"):
            index.count("ada")
        assert index.count("ada") == 2
    finally:
        index.close()


async def test_an_unreachable_server_is_a_clear_error_without_the_password(
    tmp_path: Path,
) -> None:
    url = "postgresql://nexflow:hunter2@127.0.0.1:9/nexflow"
    memory = MemoryService(tmp_path / "m.db", tmp_path / "ws", None, index_url=url)
    with pytest.raises(MemoryStoreError) as err:
        await memory.start()
    await memory.stop()
    assert err.value.message == (
        "cannot connect to the memory index at postgresql://nexflow:***@127.0.0.1:9/nexflow"
    )


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
async def test_storage_url_chooses_the_index(tmp_path: Path, pg_url: str, engine: str) -> None:
    url = pg_url if engine == "postgresql" else f"sqlite:///{tmp_path / 'nexflow.db'}"
    config = load_config(
        None,
        {
            "NEXFLOW_HOME": str(tmp_path / "home"),
            "NEXFLOW_STORAGE__URL": url,
            "NEXFLOW_MEMORY__EMBEDDER": "none",
        },
    )
    memory = build_memory(config)
    assert memory is not None
    await memory.start()
    try:
        kind = PgMemoryIndex if engine == "postgresql" else SQLiteItemIndex
        assert isinstance(memory.index, kind)
        assert (engine == "postgresql") != config.memory_path.exists()
    finally:
        await memory.stop()


def _page_story(index: Any) -> list[Any]:
    """The pager's calls on one index and what each returned, pages named by their first
    message (Postgres's identity skips a number on a conflicting insert; SQLite's does not)."""
    pages = index.pages
    out: list[Any] = []

    def seen(page: Any) -> tuple[Any, ...]:
        return (page.first_msg_id, page.last_msg_id, page.summary, page.summary_by)

    first = pages.begin(NewPage("ada", "s1", 1, 8, 8, 150, "draft", 10.0, 20.0))
    again = pages.begin(NewPage("ada", "s1", 1, 9, 9, 160, "draft 2", 10.0, 21.0))
    out += [seen(first), seen(again), again.id == first.id, pages.cut("s1")]
    done = pages.finish(
        first.id, "Herons at dawn", "llm", ["herons"], True, False, "user: herons at dawn"
    )
    out += [seen(done), done.state, done.facts, pages.cut("s1")]
    second = pages.begin(NewPage("ada", "s1", 10, 14, 5, 90, "x", 22.0, 30.0))
    pages.finish(second.id, "fallback", "fallback", [], False, True, "user: tomatoes heatwave")
    name = {first.id: "first", second.id: "second"}
    out += [[seen(p) for p in pages.to_flush("ada", 3, 5)]]
    pages.reflushed(second.id, "Tomatoes in a heatwave", ["tomatoes"], True, False)
    out += [seen(p) for p in pages.of_session("s1")]
    out += [[(name[i], text) for i, text in pages.unembedded("s1", "m", 10)]]
    pages.store_vectors("m", [(first.id, [1.0, 0.0, 0.0]), (second.id, [0.0, 1.0, 0.0])])
    out += [pages.unembedded("s1", "m", 10), len(pages.unembedded("s1", "other", 10))]
    for args in [
        ("s1", '"tomatoes"', None, None),
        ("s1", '"heron"*', None, None),
        ("s1", None, [0.9, 0.1, 0.0], "m"),
        ("s1", '"tomatoes"', [0.9, 0.1, 0.0], "m"),
        ("s2", '"tomatoes"', [0.9, 0.1, 0.0], "m"),
    ]:
        out.append([name[i] for i in pages.search(*args, 0.5, 3)])
    pages.mark_restored([first.id])
    got = pages.get(first.id, "ada")
    out += [got.restored if got else None, pages.get(first.id, "bob")]
    return out


def test_pages_behave_the_same_on_both_engines(tmp_path: Path, pg_url: str) -> None:
    stories = []
    for url in (None, pg_url):
        index = open_index(tmp_path / "memory.db", url)
        try:
            stories.append(_page_story(index))
        finally:
            index.close()
    sqlite, postgres = stories
    assert postgres == sqlite
    searches = sqlite[-7:-2]
    assert searches == [["second"], ["first"], ["first"], ["second", "first"], []]


async def test_a_new_model_re_embeds_everything(pg_url: str) -> None:
    index = PgMemoryIndex(pg_url)
    try:
        ids = index.index_file("ada", "memory/ada/MEMORY.md", parse(NOTE), (1, 1))
        index.vec.ensure("a", 3)
        index.vec.store("ada", [(i, [1.0, 0.0, 0.0]) for i in ids])
        assert index.vec.unembedded("ada", 10) == []
        index.vec.ensure("a", 3)  # the same model: nothing to do
        assert index.vec.unembedded("ada", 10) == []
        index.vec.ensure("b", 4)
        assert [i for i, _ in index.vec.unembedded("ada", 10)] == ids
        assert index.vec.count("ada") == 0
    finally:
        index.close()


def test_without_numpy_fewer_items_are_ranked_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_exact_limit() == EXACT_LIMIT  # numpy comes with the local embedder
    monkeypatch.setitem(sys.modules, "numpy", None)
    assert default_exact_limit() == EXACT_LIMIT_PURE_PYTHON < EXACT_LIMIT
