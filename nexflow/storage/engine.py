"""The two SQL engines Nexflow's storage runs on: SQLite (one file) and Postgres (a server).

Every repository writes its queries once, as functions of a :class:`Conn`, and an
engine runs them on a worker thread so the event loop never waits on the database:

- **SQLite**: one connection in WAL mode on one thread, so writes are serialised and
  ``synchronous=NORMAL`` keeps every committed transaction across a SIGKILL.
- **Postgres**: psycopg 3 (the driver DBOS already brings) with one connection per
  worker thread. The sync driver, not asyncpg or psycopg's async API, because the same
  query functions then serve both engines: a repository's transaction is one function
  run on one connection on one thread, exactly as on SQLite, with one thread hop per
  transaction rather than one per statement.

SQL is written once in the subset both engines speak: ``?`` placeholders (translated
to ``%s`` for psycopg), ``INSERT … ON CONFLICT … DO NOTHING / DO UPDATE``,
``RETURNING``; where they differ, :mod:`nexflow.storage.dialect` writes the fragment.
Rows are read by column name; a :class:`Row` also unpacks into a record's fields.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, cast

from nexflow.storage.base import StorageError

T = TypeVar("T")
Dialect = Literal["sqlite", "postgresql"]
Params = Sequence[Any] | Mapping[str, Any]


class Row(Protocol):
    """A result row: ``row["column"]``; ``*row`` gives the values in column order."""

    def __getitem__(self, key: str | int, /) -> Any: ...
    def __iter__(self) -> Iterator[Any]: ...
    def __len__(self) -> int: ...
    def keys(self) -> list[str]: ...


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Conn(Protocol):
    """What a repository's query function is given: one connection, on its thread."""

    dialect: Dialect

    def execute(self, sql: str, args: Params = (), /) -> Cursor: ...
    def executemany(self, sql: str, seq: Iterable[Params], /) -> Cursor: ...
    @property
    def in_transaction(self) -> bool: ...


class Engine(Protocol):
    dialect: Dialect
    url: str
    schema_version: int

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def run(self, fn: Callable[[Conn], T]) -> T: ...


def engine_for(url: str, *, busy_timeout_ms: int = 5_000, threads: int = 1) -> Engine:
    """The engine a ``storage.url`` names: ``sqlite:///PATH`` or ``postgresql://…``."""
    if url.startswith("sqlite:///"):
        return SQLiteEngine(Path(url.removeprefix("sqlite:///")), busy_timeout_ms)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresEngine(url, threads=threads)
    raise StorageError(
        f"storage.url must start with sqlite:/// or postgresql:// (got {redact(url)!r})"
    )


def session_args(application_name: str, *, connect_timeout_s: float = 10.0) -> dict[str, Any]:
    """psycopg connection arguments for a connection that holds a session-level advisory
    lock (a leader's, a workspace's): autocommit, named in ``pg_stat_activity``, and TCP
    keepalives (5 s idle, every 2 s, 3 probes) so a silent peer fails within ~11 s and the
    server frees the lock of a holder that vanished."""
    return {
        "autocommit": True,
        "application_name": application_name[:63],
        "connect_timeout": max(1, int(connect_timeout_s)),
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
    }


def redact(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    head, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    cred, _, host = rest.rpartition("@")
    user = cred.split(":", 1)[0]
    return f"{head}://{user}:***@{host}" if ":" in cred else url


# -- SQLite -------------------------------------------------------------------------


class SQLiteConn:
    """A :class:`Conn` over one ``sqlite3`` connection (rows are ``sqlite3.Row``)."""

    dialect: Dialect = "sqlite"
    __slots__ = ("execute", "executemany", "raw")

    def __init__(self, raw: sqlite3.Connection) -> None:
        raw.row_factory = sqlite3.Row
        self.raw = raw
        self.execute = raw.execute
        self.executemany = raw.executemany

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction


class SQLiteEngine:
    """One SQLite file in WAL mode, used from one worker thread."""

    dialect: Dialect = "sqlite"

    def __init__(self, path: Path, busy_timeout_ms: int = 5_000) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        self._busy_timeout_ms = busy_timeout_ms
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nexflow-sqlite")
        self._conn: SQLiteConn | None = None
        self.schema_version = 0

    async def run(self, fn: Callable[[Conn], T]) -> T:
        conn = self._conn
        if conn is None:
            raise StorageError("storage is not open")

        def call() -> T:
            try:
                return fn(conn)
            except sqlite3.Error as exc:
                if conn.raw.in_transaction:
                    conn.raw.rollback()
                raise StorageError(f"database error: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def open(self) -> None:
        from nexflow.storage.migrations import migrate

        def connect() -> SQLiteConn:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            raw = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            raw.execute("PRAGMA journal_mode=WAL")
            raw.execute("PRAGMA synchronous=NORMAL")
            raw.execute("PRAGMA foreign_keys=ON")
            raw.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
            conn = SQLiteConn(raw)
            self.schema_version = migrate(conn)
            return conn

        try:
            self._conn = await asyncio.get_running_loop().run_in_executor(self._executor, connect)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open database {self.path}: {exc}") from exc

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.raw.close)
        self._executor.shutdown(wait=True)


# -- Postgres -----------------------------------------------------------------------


class PgRow(tuple[Any, ...]):
    """A Postgres row read like ``sqlite3.Row``: by column name, or unpacked."""

    __slots__ = ()
    _index: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self._index[key])
            except KeyError:
                raise IndexError(f"no column {key!r}") from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


def _row_class(names: Sequence[str]) -> type[PgRow]:
    return type("Row", (PgRow,), {"__slots__": (), "_index": {n: i for i, n in enumerate(names)}})


def _pg_row_factory(cursor: Any) -> Callable[[Sequence[Any]], PgRow]:
    description = cursor.description
    if description is None:
        return PgRow
    return _row_class([d.name for d in description])


_translated: dict[str, str] = {}


def to_pyformat(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled). Cached: the
    repositories' SQL is a few hundred fixed strings."""
    out = _translated.get(sql)
    if out is None:
        out = sql.replace("%", "%%").replace("?", "%s")
        if len(_translated) < 4096:
            _translated[sql] = out
    return out


def _pg_args(args: Params) -> Params:
    # SQLite stores booleans as integers; so do the Postgres columns (BIGINT).
    if isinstance(args, Mapping):
        return {k: int(v) if isinstance(v, bool) else v for k, v in args.items()}
    return [int(v) if isinstance(v, bool) else v for v in args]


class PostgresConn:
    """A :class:`Conn` over one psycopg connection in autocommit mode (``BEGIN`` opens a
    transaction, as on SQLite)."""

    dialect: Dialect = "postgresql"
    __slots__ = ("raw",)

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def execute(self, sql: str, args: Params = (), /) -> Cursor:
        return cast(Cursor, self.raw.execute(to_pyformat(sql), _pg_args(args) or None))

    def executemany(self, sql: str, seq: Iterable[Params], /) -> Cursor:
        cur = self.raw.cursor()
        cur.executemany(to_pyformat(sql), [_pg_args(a) for a in seq])
        return cast(Cursor, cur)

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return bool(self.raw.info.transaction_status != TransactionStatus.IDLE)


class PostgresEngine:
    """A Postgres database reached with psycopg; one connection per worker thread.

    ``threads`` is 1 by default: the repositories' read-then-write transactions were
    written for SQLite's single writer, and one thread keeps that order on Postgres
    too. Several replicas share the database through row locks and leases, not threads.
    """

    dialect: Dialect = "postgresql"

    def __init__(self, url: str, *, threads: int = 1, connect_timeout_s: float = 10.0) -> None:
        self.url = url
        self._threads = max(1, threads)
        self._connect_timeout_s = connect_timeout_s
        self._executor: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._conns: list[PostgresConn] = []
        self._lock = threading.Lock()
        self.schema_version = 0

    def _connect(self) -> PostgresConn:
        import psycopg
        from psycopg.types.numeric import FloatLoader

        try:
            raw = psycopg.connect(
                self.url,
                autocommit=True,
                row_factory=_pg_row_factory,
                connect_timeout=max(1, int(self._connect_timeout_s)),
            )
        except psycopg.Error as exc:
            raise StorageError(f"cannot connect to {redact(self.url)}: {exc}") from exc
        # SUM() and AVG() return numeric: read them as float, as SQLite gives them.
        raw.adapters.register_loader("numeric", FloatLoader)
        conn = PostgresConn(raw)
        with self._lock:
            self._conns.append(conn)
        return conn

    def _thread_conn(self) -> PostgresConn:
        conn: PostgresConn | None = getattr(self._local, "conn", None)
        if conn is None or conn.raw.closed:
            conn = self._local.conn = self._connect()
        return conn

    async def run(self, fn: Callable[[Conn], T]) -> T:
        executor = self._executor
        if executor is None:
            raise StorageError("storage is not open")
        import psycopg

        def call() -> T:
            conn = self._thread_conn()
            try:
                return fn(conn)
            except psycopg.Error as exc:
                if conn.raw.closed or isinstance(exc, psycopg.OperationalError):
                    self._drop(conn)
                elif conn.in_transaction:
                    conn.raw.execute("ROLLBACK")
                raise StorageError(f"database error: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(executor, call)

    def _drop(self, conn: PostgresConn) -> None:
        self._local.conn = None
        with self._lock:
            if conn in self._conns:
                self._conns.remove(conn)
        with contextlib.suppress(Exception):  # the connection is already broken
            conn.raw.close()

    async def open(self) -> None:
        from nexflow.storage.migrations import migrate

        self._executor = ThreadPoolExecutor(
            max_workers=self._threads, thread_name_prefix="nexflow-pg"
        )
        self.schema_version = await self.run(migrate)

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return

        def close_all() -> None:
            with self._lock:
                conns, self._conns = list(self._conns), []
            for conn in conns:
                conn.raw.close()

        await asyncio.get_running_loop().run_in_executor(executor, close_all)
        executor.shutdown(wait=True)
