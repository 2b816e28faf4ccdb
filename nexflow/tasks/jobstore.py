"""APScheduler 3 job stores on the project's database, SQLite or Postgres (no SQLAlchemy).

Jobs live in the ``reminder_jobs`` table (storage migration 3) as APScheduler's pickled
job state, like ``SQLAlchemyJobStore`` keeps them, plus the owner's ``user_id`` so a
user's reminders are listed and counted with one indexed query. Another scheduler may
keep its jobs in a table of its own with the same columns (``table=``; flow triggers use
``flow_trigger_jobs``, created here if missing). A store opens its own connection next
to the storage's; if the table is missing it runs the storage migrations itself, so
start it after ``storage.open()`` (never concurrently). :func:`job_store_for` picks the
store for a ``storage.url`` (or a SQLite file's path).

- :class:`SQLiteJobStore`: one connection to the file in WAL mode.
- :class:`PostgresJobStore`: one psycopg connection (autocommit). Several replicas run
  schedulers on the same table, so a due job is *claimed* before it runs: the due rows
  are locked ``FOR UPDATE SKIP LOCKED`` and their ``next_run_time`` pushed
  :data:`CLAIM_LEASE_S` ahead in one statement; APScheduler then stores the real next run
  time (or removes the job) right after handing it to the executor. Another replica
  skips claimed rows, so a reminder fires once; one claimed by a replica that dies
  before that update fires again when the lease runs out.

APScheduler 3 calls job stores synchronously, from the event loop when the scheduler
wakes up; every call is one short statement (on a local file, or one round trip to
Postgres). ``ReminderService`` runs its own calls (add, list, cancel) in a thread. A lock
serialises use of the connection.

The pickles are trusted because only Nexflow writes this table; keep the database
private (it already holds every conversation).
"""

from __future__ import annotations

import logging
import pickle
import re
import sqlite3
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from apscheduler.job import Job
from apscheduler.jobstores.base import BaseJobStore, ConflictingIdError, JobLookupError
from apscheduler.util import datetime_to_utc_timestamp, utc_timestamp_to_datetime

from nexflow.storage.dialect import ddl, skip_locked
from nexflow.storage.engine import Conn, PostgresConn, SQLiteConn, redact
from nexflow.storage.migrations import migrate

log = logging.getLogger(__name__)

CLAIM_LEASE_S = 60.0  # Postgres: how long a claimed due job waits for its scheduler's update

_SCHEMA = """
CREATE TABLE IF NOT EXISTS {table} (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    next_run_time REAL,
    job_state BLOB NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS {table}_due ON {table}(next_run_time);
CREATE INDEX IF NOT EXISTS {table}_user ON {table}(user_id, next_run_time);
"""


def job_store_for(target: Path | str, *, table: str = "reminder_jobs") -> SQLJobStore:
    """The job store on ``target``: a SQLite file's path, or a ``storage.url``
    (``sqlite:///PATH`` or ``postgresql://…``; an engine's ``url``)."""
    if isinstance(target, Path):
        return SQLiteJobStore(target, table=table)
    if target.startswith("sqlite:///"):
        return SQLiteJobStore(Path(target.removeprefix("sqlite:///")), table=table)
    if target.startswith(("postgresql://", "postgres://")):
        return PostgresJobStore(target, table=table)
    raise ValueError(f"no job store for {redact(target)!r}")


class SQLJobStore(BaseJobStore):  # type: ignore[misc]  # APScheduler 3 ships no types
    """APScheduler job store backed by the ``reminder_jobs`` table (or ``table``); the
    engine-specific part is :meth:`_connect` (and :meth:`get_due_jobs` on Postgres)."""

    #: Other processes write this table too (Postgres): a scheduler on it must look in
    #: it periodically, not only when its own jobs are due (``engine.WakingScheduler``).
    shared: ClassVar[bool] = False

    def __init__(self, *, table: str = "reminder_jobs") -> None:
        super().__init__()
        if not re.fullmatch(r"[a-z_]+", table):
            raise ValueError("table: lowercase letters and '_'")
        self._table = table
        self._conn: Conn | None = None
        self._raw: Any = None  # the driver's connection, to close
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, scheduler: Any, alias: str) -> None:
        super().start(scheduler, alias)
        self.open()

    def open(self) -> None:
        with self._lock:
            if self._conn is None:
                self._conn = self._connect()

    def _connect(self) -> Conn:
        raise NotImplementedError

    def _create_table(self, conn: Conn) -> None:
        """Bring the table into being: the storage migrations for ``reminder_jobs``, else
        :data:`_SCHEMA` (``IF NOT EXISTS``: a concurrent creator is harmless)."""
        if self._table == "reminder_jobs":
            migrate(conn)
            return
        for statement in filter(str.strip, _SCHEMA.format(table=self._table).split(";")):
            conn.execute(ddl(conn.dialect, statement))

    def shutdown(self) -> None:
        with self._lock:
            raw, self._raw, self._conn = self._raw, None, None
            if raw is not None:
                raw.close()

    # -- BaseJobStore ------------------------------------------------------------------

    def lookup_job(self, job_id: str) -> Job | None:
        row = self._one(f"SELECT job_state FROM {self._table} WHERE id = ?", (job_id,))
        return self._reconstitute(row["job_state"]) if row else None

    def get_due_jobs(self, now: datetime) -> list[Job]:
        return self._jobs(
            "WHERE next_run_time <= ? ORDER BY next_run_time", (datetime_to_utc_timestamp(now),)
        )

    def get_next_run_time(self) -> datetime | None:
        row = self._one(
            f"SELECT next_run_time FROM {self._table} WHERE next_run_time IS NOT NULL "
            "ORDER BY next_run_time LIMIT 1",
            (),
        )
        return utc_timestamp_to_datetime(row["next_run_time"]) if row else None

    def get_all_jobs(self) -> list[Job]:
        jobs = self._jobs("ORDER BY next_run_time", ())
        self._fix_paused_jobs_sorting(jobs)
        return jobs

    def add_job(self, job: Job) -> None:
        added = self._write(
            f"INSERT INTO {self._table} (id, user_id, next_run_time, job_state, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (job.id, _owner(job), _ts(job), _state(job), time.time()),
        )
        if added == 0:
            raise ConflictingIdError(job.id)

    def update_job(self, job: Job) -> None:
        changed = self._write(
            f"UPDATE {self._table} SET next_run_time = ?, job_state = ? WHERE id = ?",
            (_ts(job), _state(job), job.id),
        )
        if changed == 0:
            raise JobLookupError(job.id)

    def remove_job(self, job_id: str) -> None:
        if self._write(f"DELETE FROM {self._table} WHERE id = ?", (job_id,)) == 0:
            raise JobLookupError(job_id)

    def remove_all_jobs(self) -> None:
        self._write(f"DELETE FROM {self._table}", ())

    # -- queries for ReminderService ---------------------------------------------------

    def jobs_of(self, user_id: str) -> list[Job]:
        return self._jobs("WHERE user_id = ? ORDER BY next_run_time", (user_id,))

    def count_of(self, user_id: str) -> int:
        row = self._one(f"SELECT COUNT(*) AS n FROM {self._table} WHERE user_id = ?", (user_id,))
        return int(row["n"]) if row else 0

    def owners(self) -> list[str]:
        with self._lock:
            rows = self._connection().execute(
                f"SELECT DISTINCT user_id FROM {self._table} ORDER BY user_id"
            )
            return [str(r["user_id"]) for r in rows.fetchall()]

    def owner_of(self, job_id: str) -> str | None:
        row = self._one(f"SELECT user_id FROM {self._table} WHERE id = ?", (job_id,))
        return str(row["user_id"]) if row else None

    # -- helpers -----------------------------------------------------------------------

    def _connection(self) -> Conn:
        if self._conn is None:
            raise RuntimeError("the reminder job store is not open")
        return self._conn

    def _one(self, sql: str, args: tuple[Any, ...]) -> Any:
        with self._lock:
            return self._connection().execute(sql, args).fetchone()

    def _write(self, sql: str, args: tuple[Any, ...]) -> int:
        with self._lock:
            return self._connection().execute(sql, args).rowcount

    def _jobs(self, where: str, args: tuple[Any, ...]) -> list[Job]:
        with self._lock:
            rows = (
                self._connection()
                .execute(f"SELECT id, job_state FROM {self._table} {where}", args)
                .fetchall()
            )
        return self._restore(rows)

    def _restore(self, rows: list[Any]) -> list[Job]:
        jobs, broken = [], []
        for row in rows:
            try:
                jobs.append(self._reconstitute(row["job_state"]))
            except Exception:  # a job from an incompatible version: drop it, keep the rest
                log.exception("cannot restore reminder job %s; removing it", row["id"])
                broken.append(row["id"])
        for job_id in broken:
            self._write(f"DELETE FROM {self._table} WHERE id = ?", (job_id,))
        return jobs

    def _reconstitute(self, blob: bytes) -> Job:
        state = pickle.loads(blob)
        state["jobstore"] = self
        job = Job.__new__(Job)
        job.__setstate__(state)
        job._scheduler = self._scheduler
        job._jobstore_alias = self._alias
        return job


class SQLiteJobStore(SQLJobStore):
    """The job store on a SQLite file (``path``), in WAL mode."""

    def __init__(
        self, path: Path, *, busy_timeout_ms: int = 2_000, table: str = "reminder_jobs"
    ) -> None:
        super().__init__(table=table)
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms

    def _connect(self) -> Conn:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        raw = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute("PRAGMA synchronous=NORMAL")
        raw.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
        conn = SQLiteConn(raw)
        found = conn.execute(
            "SELECT 1 AS found FROM sqlite_master WHERE type='table' AND name=?", (self._table,)
        ).fetchone()
        if found is None:
            self._create_table(conn)
        self._raw = raw
        return conn

    def __repr__(self) -> str:
        return f"<SQLiteJobStore {self._path}>"


class PostgresJobStore(SQLJobStore):
    """The job store on a Postgres database (``url``, the storage's); due jobs are
    claimed so that one replica runs each (module docstring)."""

    shared: ClassVar[bool] = True

    def __init__(
        self, url: str, *, table: str = "reminder_jobs", connect_timeout_s: int = 10
    ) -> None:
        super().__init__(table=table)
        self._url = url
        self._connect_timeout_s = connect_timeout_s

    def _connect(self) -> Conn:
        import psycopg
        from psycopg.rows import dict_row

        raw = psycopg.connect(
            self._url,
            autocommit=True,
            row_factory=dict_row,
            connect_timeout=max(1, int(self._connect_timeout_s)),
        )
        conn = PostgresConn(raw)
        found = conn.execute("SELECT to_regclass(?) AS found", (self._table,)).fetchone()
        if found is None or found["found"] is None:
            self._create_table(conn)
        self._raw = raw
        return conn

    def _connection(self) -> Conn:
        raw = self._raw
        if raw is not None and (raw.closed or raw.broken):  # the server went away: reconnect
            log.warning("the job store's Postgres connection was lost; reconnecting")
            self._conn, self._raw = None, None
            self._conn = self._connect()
        return super()._connection()

    def get_due_jobs(self, now: datetime) -> list[Job]:
        """Claim the due jobs no other replica holds (see the module docstring)."""
        ts = datetime_to_utc_timestamp(now)
        with self._lock:
            conn = self._connection()
            rows = conn.execute(
                f"UPDATE {self._table} SET next_run_time = ? WHERE id IN ("
                f"SELECT id FROM {self._table} WHERE next_run_time <= ? "
                f"ORDER BY next_run_time{skip_locked(conn.dialect)}) RETURNING id, job_state",
                (ts + CLAIM_LEASE_S, ts),
            ).fetchall()
        jobs = self._restore(rows)
        jobs.sort(key=lambda job: job.next_run_time)
        return jobs

    def __repr__(self) -> str:
        return f"<PostgresJobStore {redact(self._url)}>"


def _owner(job: Job) -> str:
    return str(job.kwargs.get("user_id", ""))


def _ts(job: Job) -> float | None:
    return datetime_to_utc_timestamp(job.next_run_time)  # type: ignore[no-any-return]


def _state(job: Job) -> bytes:
    return pickle.dumps(job.__getstate__(), pickle.HIGHEST_PROTOCOL)
