"""``nexflow migrate sqlite-to-postgres``: move a single-machine install's database over.

What moves, and how:

- **The gateway database** (``nexflow.db``): the target's schema is brought to this
  version by the same migration history, then every table of the SQLite file is copied in
  foreign-key order, in one transaction (a failure leaves the target empty), in batches
  with ``COPY``, by column *name* (the SQLite table's columns are read and the same
  columns written); the flow triggers' job table too (:data:`JOB_TABLES`, made on the
  target by the job store). Identity sequences restart at ``max(id) + 1``. The SQLite
  file is read in one read transaction, a consistent snapshot, and is never written (it
  is first migrated to this version, as a start would, when it is older).
- **Checks**: per table the rows in source and target and a SHA-256 over the rows in
  primary-key order (text compared byte-wise: ``COLLATE "C"`` on Postgres, SQLite's
  binary order), values normalised so REAL/DOUBLE PRECISION and INTEGER/BIGINT compare
  equal. Any difference is a ``MISMATCH`` and a non-zero exit.
- **Refused**: a target that holds Nexflow rows already (copying into a live database
  would mix two installs; there is no ``--force``), and a move while the durable
  engine's SQLite database (``flows.sqlite3``, DBOS's own) has runs pending or enqueued:
  DBOS's internals are not copied across engines. Finished runs' history stays in that
  file; new runs go to the Postgres database.
- **The memory index's context pages** (summaries of paged-out history in
  ``memory.db``, which nothing can rebuild) move into the Postgres memory index's tables
  with the same checks (:mod:`nexflow.storage.transfer_memory`); its items are not
  copied: the Markdown notes are their truth and the index is rebuilt from them.
- **Not in the database**: the workspaces (git repositories) and the notes folder are
  files (:mod:`nexflow.storage.transfer_report` says where they are).

Exceptions: :class:`TransferRefused` (the move would lose or mix data; no rows written),
:class:`~nexflow.storage.base.StorageError` (a database failed; the copy is rolled back).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from nexflow.storage.base import StorageError
from nexflow.storage.engine import PostgresEngine, SQLiteEngine, redact

Out = Callable[[str], None]
BATCH_ROWS = 5_000
PROGRESS_ROWS = 20_000  # a table this big reports its progress (about every 5 %)
# Job stores' tables outside the migrations (nexflow.tasks.jobstore makes them on first
# use): made on the target by the job store itself when the source has them. The flow
# triggers' must move: the store's owners are whose flows are reconciled at start.
JOB_TABLES = ("flow_trigger_jobs",)


class TransferRefused(StorageError):
    """The move would lose or mix data; no rows were written (the target's empty tables
    may have been created)."""


@dataclass(frozen=True, slots=True)
class TableReport:
    """One table's result: rows and checksum on both sides."""

    name: str
    source_rows: int
    source_sum: str
    target_rows: int
    target_sum: str

    @property
    def ok(self) -> bool:
        return self.source_rows == self.target_rows and self.source_sum == self.target_sum


@dataclass(frozen=True, slots=True)
class Table:
    """One table to copy: where its rows come from and how they are ordered."""

    name: str  # the target's table
    columns: tuple[str, ...]  # the source's, in its order
    key: tuple[str, ...]  # primary key columns (all columns when there is none)
    text_columns: frozenset[str]  # text on the target: ordered byte-wise there
    source: str = ""  # what to SELECT from in the source (default: the same table)
    db: str = "gateway"  # which SQLite file: the gateway's, or the memory index

    @property
    def origin(self) -> str:
        return self.source or f'"{self.name}"'


async def transfer(
    source: Path,
    target_url: str,
    *,
    memory: Path | None = None,
    out: Out = print,
    batch: int = BATCH_ROWS,
) -> list[TableReport]:
    """Copy ``source`` (a SQLite file) into the empty Postgres database ``target_url``
    and verify it; one :class:`TableReport` per table (check ``ok``). ``memory``: the
    SQLite memory index whose context pages move too (:mod:`.transfer_memory`)."""
    if not await asyncio.to_thread(source.is_file):
        raise TransferRefused(f"no SQLite database at {source} (give --from PATH)")
    # Both sides at this code's schema version (the same history on both engines).
    for engine in (SQLiteEngine(source), PostgresEngine(target_url)):
        await engine.open()
        await engine.close()
    await asyncio.to_thread(_job_tables, source, target_url)
    from nexflow.storage.transfer_memory import has_pages, memory_schema

    pages = memory if memory is not None and await asyncio.to_thread(has_pages, memory) else None
    if pages is not None:
        await asyncio.to_thread(memory_schema, target_url)
    return await asyncio.to_thread(_transfer, source, pages, target_url, out, batch)


def _job_tables(source: Path, target_url: str) -> None:
    from nexflow.tasks.jobstore import job_store_for

    conn = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    try:
        held = {
            str(r[0])
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            if r[0] in JOB_TABLES
        }
    finally:
        conn.close()
    for table in sorted(held):
        store = job_store_for(target_url, table=table)
        store.open()  # creates the table when it is missing
        store.shutdown()


def _transfer(
    source: Path, memory: Path | None, target_url: str, out: Out, batch: int
) -> list[TableReport]:
    from nexflow.storage.transfer_memory import memory_pages, page_terms

    with _connections(source, memory, target_url) as (srcs, dst):
        target_columns = _target_columns(dst)
        tables = _plan(srcs["gateway"], target_columns)
        if "memory" in srcs:
            tables += memory_pages(srcs["memory"], target_columns)
        _refuse_non_empty(dst, tables)
        sums: dict[str, tuple[int, str]] = {}
        for table in tables:
            sums[table.name] = _copy(srcs[table.db], dst, table, out, batch)
            if table.name == "memory_pages":
                page_terms(srcs["memory"], dst)
        _reset_identities(dst, tables, target_columns)
        dst.commit()
        reports = []
        for table in tables:
            rows, digest = _target_sum(dst, table)
            reports.append(TableReport(table.name, *sums[table.name], rows, digest))
        return reports


@contextlib.contextmanager
def _connections(
    source: Path, memory: Path | None, target_url: str
) -> Iterator[tuple[dict[str, sqlite3.Connection], Any]]:
    """Read-only SQLite connections, each in one read transaction (a snapshot for the copy
    and its checksums), and a Postgres connection in a transaction."""
    import psycopg

    srcs: dict[str, sqlite3.Connection] = {}
    try:
        for db, path in (("gateway", source), ("memory", memory)):
            if path is not None:
                srcs[db] = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
                srcs[db].execute("BEGIN")
        try:
            dst = psycopg.connect(target_url, autocommit=False)
        except psycopg.Error as exc:
            raise StorageError(f"cannot connect to {redact(target_url)}: {exc}") from exc
        try:
            yield srcs, dst
        except psycopg.Error as exc:
            raise StorageError(f"copy into {redact(target_url)} failed: {exc}") from exc
        finally:
            dst.close()
    finally:
        for conn in srcs.values():
            conn.close()


def _target_columns(dst: Any) -> dict[str, dict[str, tuple[str, bool]]]:
    """Table → column → (data type, is an identity) in the target's current schema."""
    found: dict[str, dict[str, tuple[str, bool]]] = {}
    rows = dst.execute(
        "SELECT table_name, column_name, data_type, is_identity FROM information_schema.columns "
        "WHERE table_schema = current_schema()"
    ).fetchall()
    for table, column, data_type, identity in rows:
        found.setdefault(table, {})[column] = (data_type, identity == "YES")
    dst.rollback()
    return found


def _plan(src: sqlite3.Connection, target: dict[str, dict[str, tuple[str, bool]]]) -> list[Table]:
    """The source's tables in foreign-key order (referenced tables first)."""
    names = [
        str(r[0])
        for r in src.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
            "AND name != 'schema_version' ORDER BY name"
        )
    ]
    missing = [n for n in names if n not in target]
    if missing:
        raise TransferRefused(
            f"the target has no table {', '.join(missing)}: this SQLite file holds data this "
            "Nexflow version does not know; run the version that wrote it"
        )
    tables: dict[str, Table] = {}
    parents: dict[str, set[str]] = {}
    for name in (n for n in names if n in target):
        info = src.execute(f'PRAGMA table_info("{name}")').fetchall()
        columns = tuple(str(r[1]) for r in info)
        unknown = [c for c in columns if c not in target[name]]
        if unknown:
            raise TransferRefused(
                f"the target's table {name} has no column {', '.join(unknown)}; "
                "run the Nexflow version that wrote this SQLite file"
            )
        key = tuple(str(r[1]) for r in sorted((r for r in info if r[5]), key=lambda r: r[5]))
        text = frozenset(c for c in columns if target[name][c][0] in ("text", "character varying"))
        tables[name] = Table(name, columns, key or columns, text)
        refs = src.execute(f'PRAGMA foreign_key_list("{name}")').fetchall()
        parents[name] = {str(r[2]) for r in refs if str(r[2]) != name}
    ordered: list[Table] = []
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in done or name not in tables:
            return
        if name in path:
            raise TransferRefused(f"foreign keys form a cycle: {' -> '.join((*path, name))}")
        for parent in sorted(parents[name]):
            visit(parent, (*path, name))
        done.add(name)
        ordered.append(tables[name])

    for name in sorted(tables):
        visit(name, ())
    return ordered


def _refuse_non_empty(dst: Any, tables: Sequence[Table]) -> None:
    held = []
    for table in tables:
        row = dst.execute(f'SELECT COUNT(*) FROM "{table.name}"').fetchone()
        if row[0]:
            held.append(f"{table.name}: {row[0]} rows")
    if held:
        dst.rollback()
        raise TransferRefused(
            "the target database already holds Nexflow data ("
            + ", ".join(held[:6])
            + (", …" if len(held) > 6 else "")
            + "). The move copies into an empty database only, so two installs never mix: "
            "point --to at a new database (or schema), or drop its tables, and run it again"
        )


def _copy(src: sqlite3.Connection, dst: Any, table: Table, out: Out, batch: int) -> tuple[int, str]:
    """Copy one table; return the rows read and their checksum."""
    total = src.execute(f"SELECT COUNT(*) FROM {table.origin}").fetchone()[0]
    columns = ", ".join(f'"{c}"' for c in table.columns)
    order = ", ".join(f'"{c}"' for c in table.key)
    cursor = src.execute(f"SELECT {columns} FROM {table.origin} ORDER BY {order}")
    digest = hashlib.sha256()
    copied = 0
    started = time.monotonic()
    step = max(1, total // 20)  # a big table says how far it is about every 5 %
    mark = step
    with dst.cursor().copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
        while rows := cursor.fetchmany(batch):
            for row in rows:
                _hash_row(digest, row)
                copy.write_row([int(v) if isinstance(v, bool) else v for v in row])
            copied += len(rows)
            if total >= PROGRESS_ROWS and (copied >= mark or copied == total):
                mark = copied + step
                rate = copied / max(time.monotonic() - started, 1e-6)
                out(f"  {table.name}: {copied:,} of {total:,} rows ({rate:,.0f} rows/s)")
    return copied, digest.hexdigest()


def _reset_identities(
    dst: Any, tables: Iterable[Table], target: dict[str, dict[str, tuple[str, bool]]]
) -> None:
    """The next generated id after the copied ones: ``max(id) + 1``."""
    for table in tables:
        for column, (_, identity) in target[table.name].items():
            if identity:
                dst.execute(
                    f"SELECT setval(pg_get_serial_sequence(%s, %s), "
                    f'COALESCE((SELECT MAX("{column}") FROM "{table.name}"), 0) + 1, false)',
                    (f'"{table.name}"', column),
                )


def _target_sum(dst: Any, table: Table) -> tuple[int, str]:
    columns = ", ".join(f'"{c}"' for c in table.columns)
    # SQLite's order: text byte-wise, NULLs first
    order = ", ".join(
        f'"{c}"' + (' COLLATE "C"' if c in table.text_columns else "") + " NULLS FIRST"
        for c in table.key
    )
    digest = hashlib.sha256()
    rows = 0
    with dst.transaction(), dst.cursor(name=f"nexflow_sum_{table.name}") as cursor:
        cursor.itersize = BATCH_ROWS
        cursor.execute(f'SELECT {columns} FROM "{table.name}" ORDER BY {order}')
        for row in cursor:
            _hash_row(digest, row)
            rows += 1
    dst.rollback()
    return rows, digest.hexdigest()


def _hash_row(digest: Any, row: Sequence[Any]) -> None:
    for value in row:
        data = _normal(value)
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)


def _normal(value: Any) -> bytes:
    """One value as bytes both engines give alike: an integral float is the integer."""
    if value is None:
        return b"n"
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, Decimal):
        value = int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        value = int(value)
    if isinstance(value, int):
        return b"i%d" % value
    if isinstance(value, float):
        return b"f" + repr(value).encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return b"b" + bytes(value)
    return b"s" + str(value).encode("utf-8", "surrogatepass")


async def verify(source: Path, target_url: str, *, memory: Path | None = None) -> list[TableReport]:
    """Count and checksum both sides again, copying nothing (``--verify``, after a move)."""
    if not await asyncio.to_thread(source.is_file):
        raise TransferRefused(f"no SQLite database at {source} (give --from PATH)")
    from nexflow.storage.transfer_memory import has_pages, memory_pages

    pages = memory if memory is not None and await asyncio.to_thread(has_pages, memory) else None

    def run() -> list[TableReport]:
        with _connections(source, pages, target_url) as (srcs, dst):
            versions = [
                db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
                for db in (srcs["gateway"], dst)
            ]
            dst.rollback()
            if versions[0] != versions[1]:
                raise TransferRefused(
                    f"the SQLite file's schema is version {versions[0]}, the target's "
                    f"{versions[1]}: a newer Nexflow opened one of them since the move, so "
                    "their tables differ and cannot be compared"
                )
            target_columns = _target_columns(dst)
            tables = _plan(srcs["gateway"], target_columns)
            if "memory" in srcs and "memory_pages" in target_columns:
                tables += memory_pages(srcs["memory"], target_columns)
            reports = []
            for table in tables:
                rows, digest = _source_sum(srcs[table.db], table)
                reports.append(TableReport(table.name, rows, digest, *_target_sum(dst, table)))
            return reports

    return await asyncio.to_thread(run)


def _source_sum(src: sqlite3.Connection, table: Table) -> tuple[int, str]:
    columns = ", ".join(f'"{c}"' for c in table.columns)
    order = ", ".join(f'"{c}"' for c in table.key)
    digest = hashlib.sha256()
    rows = 0
    for row in src.execute(f"SELECT {columns} FROM {table.origin} ORDER BY {order}"):
        _hash_row(digest, row)
        rows += 1
    return rows, digest.hexdigest()
