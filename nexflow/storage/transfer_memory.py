"""The memory index's context pages in ``nexflow migrate sqlite-to-postgres``.

A page is a summary of a paged-out stretch of a session's history: unlike the memory
items (chunks of the Markdown notes, rebuilt from them on first use), nothing can make it
again. The SQLite index's ``pages`` (with its FTS body) and ``page_vectors`` move into the
Postgres memory index's ``memory_pages`` and ``memory_page_vectors``
(:mod:`nexflow.memory.pg_pages`), in the same transaction and with the same checks as the
gateway's tables; each page's ``terms`` are computed again as the Postgres index computes
them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from nexflow.storage.transfer import Table, TransferRefused

# The SQLite index's page tables and their Postgres names (nexflow.memory.pg_pages).
_PAGE_TABLES = {"pages": "memory_pages", "page_vectors": "memory_page_vectors"}


def has_pages(memory: Path) -> bool:
    if not memory.is_file():
        return False
    conn = sqlite3.connect(f"{memory.resolve().as_uri()}?mode=ro", uri=True)
    try:
        found = conn.execute(
            "SELECT COUNT(*) FROM sqlite_master "
            "WHERE type='table' AND name IN ('pages', 'pages_fts')"
        ).fetchone()
        return bool(found[0] == 2)
    finally:
        conn.close()


def memory_schema(target_url: str) -> None:
    """The Postgres memory index's tables, made as the gateway makes them."""
    from nexflow.memory.pg_store import PgMemoryIndex

    PgMemoryIndex(target_url).close()


def memory_pages(
    src: sqlite3.Connection, target: dict[str, dict[str, tuple[str, bool]]]
) -> list[Table]:
    """The context pages and their vectors: summaries of paged-out history that, unlike
    the memory items, the Markdown notes cannot rebuild. A page's FTS body travels in
    its row (``body``); its ``terms`` are computed again on the target."""
    tables = []
    for name, into in _PAGE_TABLES.items():
        info = src.execute(f'PRAGMA table_info("{name}")').fetchall()
        columns = tuple(str(r[1]) for r in info)
        source = f'"{name}"'
        if name == "pages":
            columns = (*columns, "body")
            source = (
                "(SELECT p.*, COALESCE(f.body, '') AS body FROM pages p "
                "LEFT JOIN pages_fts f ON f.rowid = p.id) AS pages"
            )
        unknown = [c for c in columns if c not in target.get(into, {})]
        if unknown:
            raise TransferRefused(
                f"the target's {into} has no column {', '.join(unknown)}: this memory index "
                "is from another Nexflow version"
            )
        key = tuple(str(r[1]) for r in sorted((r for r in info if r[5]), key=lambda r: r[5]))
        text = frozenset(c for c in columns if target[into][c][0] == "text")
        tables.append(Table(into, columns, key or columns, text, source, "memory"))
    return tables


def page_terms(src: sqlite3.Connection, dst: Any) -> None:
    """Each copied page's full-text terms, as :class:`PgPageIndex` writes them."""
    from nexflow.memory.pg_text import TS_CONFIG, words

    rows = src.execute(
        "SELECT p.id, p.summary, COALESCE(f.body, '') FROM pages p "
        "LEFT JOIN pages_fts f ON f.rowid = p.id"
    ).fetchall()
    with dst.cursor() as cur:
        cur.executemany(
            f"UPDATE memory_pages SET terms = to_tsvector('{TS_CONFIG}', %s) || "
            f"to_tsvector('{TS_CONFIG}', %s) WHERE id = %s",
            [(words(summary), words(body), page_id) for page_id, summary, body in rows],
        )
