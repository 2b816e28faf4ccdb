"""The engine contract the repositories rely on, on SQLite and on a real Postgres:
placeholders, booleans, numbers, rows by name, errors and rollback, migrations run once
(also by two replicas at once), and a killed Postgres connection replaced."""

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from nexflow.storage import StorageError
from nexflow.storage.dialect import begin, skip_locked
from nexflow.storage.engine import Conn, Engine, PostgresEngine, SQLiteEngine
from nexflow.storage.migrations import MIGRATIONS, MigrationError
from nexflow.testing.postgres import Postgres

NEWEST = MIGRATIONS[-1][0]


@pytest.fixture
async def engine(storage_target: Path | Engine) -> AsyncIterator[Engine]:
    eng = SQLiteEngine(storage_target) if isinstance(storage_target, Path) else storage_target
    await eng.open()
    await eng.run(
        lambda c: c.execute(
            "CREATE TABLE probe (id INTEGER PRIMARY KEY, label TEXT, n INTEGER, x REAL)"
        )
    )
    yield eng
    await eng.close()


async def test_a_literal_percent_next_to_placeholders(engine: Engine) -> None:
    def q(c: Conn) -> tuple[str, int]:
        c.execute("INSERT INTO probe (id, label) VALUES (?, ?)", (1, "50% off"))
        c.execute("INSERT INTO probe (id, label) VALUES (?, ?)", (2, "full price"))
        row = c.execute("SELECT '100%' || ? AS v", ("s",)).fetchone()
        hits = c.execute(
            "SELECT COUNT(*) AS n FROM probe WHERE label LIKE '%\\%%' ESCAPE '\\' AND id > ?",
            (0,),
        ).fetchone()
        return row["v"], int(hits["n"])

    assert await engine.run(q) == ("100%s", 1)


async def test_booleans_are_stored_and_compared_as_integers(engine: Engine) -> None:
    def q(c: Conn) -> list[tuple[int, int]]:
        c.executemany("INSERT INTO probe (id, n) VALUES (?, ?)", [(1, True), (2, False), (3, True)])
        rows = c.execute("SELECT id, n FROM probe WHERE n = ? ORDER BY id", (True,)).fetchall()
        return [(r["id"], r["n"]) for r in rows]

    got = await engine.run(q)
    assert got == [(1, 1), (3, 1)]
    assert all(type(n) is int for _, n in got)


async def test_sums_come_back_as_plain_numbers(engine: Engine) -> None:
    def q(c: Conn) -> tuple[object, object, object]:
        c.executemany("INSERT INTO probe (id, n, x) VALUES (?, ?, ?)", [(1, 2, 0.25), (2, 4, 0.5)])
        row = c.execute(
            "SELECT SUM(n) AS total, SUM(x) AS xs, AVG(n) AS mean FROM probe"
        ).fetchone()
        return row["total"], row["xs"], row["mean"]

    total, xs, mean = await engine.run(q)
    assert total == 6 and xs == 0.75 and mean == 3
    assert type(xs) is float and type(mean) is float
    assert not isinstance(total, Decimal)  # Postgres' numeric is read as float


async def test_rows_are_read_by_name_and_unpack_in_column_order(engine: Engine) -> None:
    def q(c: Conn) -> tuple[str, int, list[object], list[str]]:
        c.execute("INSERT INTO probe (id, label, n) VALUES (?, ?, ?)", (7, "seven", 70))
        row = c.execute("SELECT label, n, id AS ident FROM probe WHERE id=?", (7,)).fetchone()
        return row["label"], row["ident"], [*row], list(row.keys())

    assert await engine.run(q) == ("seven", 7, ["seven", 70, 7], ["label", "n", "ident"])


async def test_bad_sql_is_a_storage_error_and_rolls_back(engine: Engine) -> None:
    def half_done(c: Conn) -> None:
        c.execute(begin(c.dialect))
        c.execute("INSERT INTO probe (id, label) VALUES (?, ?)", (1, "partial"))
        c.execute("SELEKT nonsense")

    with pytest.raises(StorageError, match="database error"):
        await engine.run(half_done)

    def after(c: Conn) -> tuple[int, bool]:
        n = c.execute("SELECT COUNT(*) AS n FROM probe").fetchone()["n"]
        return int(n), c.in_transaction

    assert await engine.run(after) == (0, False)
    # The connection is usable: a new transaction commits.
    await engine.run(
        lambda c: c.execute("INSERT INTO probe (id, label) VALUES (?, ?)", (2, "whole"))
    )
    assert await engine.run(after) == (1, False)


async def test_a_constraint_violation_is_a_storage_error(engine: Engine) -> None:
    await engine.run(lambda c: c.execute("INSERT INTO probe (id) VALUES (?)", (1,)))
    with pytest.raises(StorageError):
        await engine.run(lambda c: c.execute("INSERT INTO probe (id) VALUES (?)", (1,)))


async def test_skip_locked_is_sqlite_free(engine: Engine) -> None:
    def q(c: Conn) -> int:
        c.execute("INSERT INTO probe (id) VALUES (?)", (1,))
        c.execute(begin(c.dialect))
        try:
            row = c.execute(f"SELECT id FROM probe WHERE id=?{skip_locked(c.dialect)}", (1,))
            return int(row.fetchone()["id"])
        finally:
            c.execute("COMMIT")

    assert await engine.run(q) == 1
    assert skip_locked("sqlite") == ""


# -- Postgres only ------------------------------------------------------------------


async def _migrations(engine: Engine) -> list[tuple[int, float]]:
    rows = await engine.run(
        lambda c: c.execute(
            "SELECT version, applied_at FROM schema_version ORDER BY version"
        ).fetchall()
    )
    return [(r["version"], r["applied_at"]) for r in rows]


async def test_opening_a_migrated_postgres_schema_again_changes_nothing(pg_url: str) -> None:
    first = PostgresEngine(pg_url)
    await first.open()
    before = await _migrations(first)
    await first.close()
    assert [v for v, _ in before] == [v for v, _, _ in MIGRATIONS]

    second = PostgresEngine(pg_url)
    await second.open()
    try:
        assert second.schema_version == NEWEST
        assert await _migrations(second) == before
    finally:
        await second.close()


async def test_a_newer_postgres_schema_is_refused(pg_url: str) -> None:
    first = PostgresEngine(pg_url)
    await first.open()
    await first.run(
        lambda c: c.execute("INSERT INTO schema_version VALUES (?, ?, ?)", (999, "future", 0.0))
    )
    await first.close()
    second = PostgresEngine(pg_url)
    with pytest.raises(MigrationError, match="newer"):
        await second.open()
    await second.close()


async def test_two_replicas_migrating_one_schema_at_once_both_succeed(pg_url: str) -> None:
    engines = [PostgresEngine(pg_url) for _ in range(3)]
    try:
        await asyncio.gather(*(e.open() for e in engines))
        assert [e.schema_version for e in engines] == [NEWEST] * 3
        assert [v for v, _ in await _migrations(engines[0])] == [v for v, _, _ in MIGRATIONS]
    finally:
        for e in engines:
            await e.close()


async def test_a_killed_postgres_connection_is_replaced(pg_server: Postgres, pg_url: str) -> None:
    engine = PostgresEngine(pg_url)
    await engine.open()

    def pid(c: Conn) -> int:
        return int(c.execute("SELECT pg_backend_pid() AS pid").fetchone()["pid"])

    try:
        old = await engine.run(pid)
        with psycopg.connect(pg_server.url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (old,))
        # The call that meets the dead connection may fail (the statement may not be
        # safe to repeat); the engine drops it, and the next call gets a new one.
        with contextlib.suppress(StorageError):
            await engine.run(pid)
        new = await engine.run(pid)
        assert new != old
        assert await engine.run(lambda c: c.execute("SELECT 1 AS one").fetchone()["one"]) == 1
    finally:
        await engine.close()


async def test_a_storage_error_names_the_server_without_its_password(pg_url: str) -> None:
    url = re.sub(r"@127\.0\.0\.1:\d+/", "@127.0.0.1:1/", pg_url)  # nobody listens on port 1
    assert url != pg_url
    engine = PostgresEngine(url, connect_timeout_s=2)
    with pytest.raises(StorageError) as info:
        await engine.open()
    await engine.close()
    assert "s3cret" not in str(info.value)
