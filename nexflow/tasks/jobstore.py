"""An APScheduler 3 job store on the project's SQLite database (no SQLAlchemy needed).

Jobs live in the ``reminder_jobs`` table (storage migration 3) as APScheduler's pickled
job state, like ``SQLAlchemyJobStore`` keeps them, plus the owner's ``user_id`` so a
user's reminders are listed and counted with one indexed query. Another scheduler may
keep its jobs in a table of its own with the same columns (``table=``; flow triggers use
``flow_trigger_jobs``, created here if missing). The store opens its own
connection in WAL mode next to the storage's; if the table is missing it runs the
storage migrations itself, so start it after ``storage.open()`` (never concurrently).

APScheduler 3 calls job stores synchronously, from the event loop when the scheduler
wakes up; every call is one short statement on a local file. ``ReminderService`` runs its
own calls (add, list, cancel) in a thread. A lock serialises use of the connection.

The pickles are trusted because only Nexflow writes this table; keep the database file
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
from typing import Any

from apscheduler.job import Job
from apscheduler.jobstores.base import BaseJobStore, ConflictingIdError, JobLookupError
from apscheduler.util import datetime_to_utc_timestamp, utc_timestamp_to_datetime

from nexflow.storage.migrations import migrate

log = logging.getLogger(__name__)

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


class SQLiteJobStore(BaseJobStore):  # type: ignore[misc]  # APScheduler 3 ships no types
    """APScheduler job store backed by the ``reminder_jobs`` table (or ``table``) of
    ``path``."""

    def __init__(
        self, path: Path, *, busy_timeout_ms: int = 2_000, table: str = "reminder_jobs"
    ) -> None:
        super().__init__()
        if not re.fullmatch(r"[a-z_]+", table):
            raise ValueError("table: lowercase letters and '_'")
        self._table = table
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, scheduler: Any, alias: str) -> None:
        super().start(scheduler, alias)
        self.open()

    def open(self) -> None:
        if self._conn is not None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
        found = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (self._table,)
        ).fetchone()
        if found is None and self._table == "reminder_jobs":
            migrate(conn)
        elif found is None:
            conn.executescript(_SCHEMA.format(table=self._table))
        self._conn = conn

    def shutdown(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    # -- BaseJobStore ------------------------------------------------------------------

    def lookup_job(self, job_id: str) -> Job | None:
        row = self._one(f"SELECT job_state FROM {self._table} WHERE id = ?", (job_id,))
        return self._reconstitute(row[0]) if row else None

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
        return utc_timestamp_to_datetime(row[0]) if row else None

    def get_all_jobs(self) -> list[Job]:
        jobs = self._jobs("ORDER BY next_run_time", ())
        self._fix_paused_jobs_sorting(jobs)
        return jobs

    def add_job(self, job: Job) -> None:
        try:
            self._write(
                f"INSERT INTO {self._table} (id, user_id, next_run_time, job_state, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (job.id, _owner(job), _ts(job), _state(job), time.time()),
            )
        except sqlite3.IntegrityError as e:
            raise ConflictingIdError(job.id) from e

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
        row = self._one(f"SELECT COUNT(*) FROM {self._table} WHERE user_id = ?", (user_id,))
        return int(row[0]) if row else 0

    def owners(self) -> list[str]:
        with self._lock:
            rows = self._connection().execute(
                f"SELECT DISTINCT user_id FROM {self._table} ORDER BY user_id"
            )
            return [str(r[0]) for r in rows.fetchall()]

    def owner_of(self, job_id: str) -> str | None:
        row = self._one(f"SELECT user_id FROM {self._table} WHERE id = ?", (job_id,))
        return str(row[0]) if row else None

    # -- helpers -----------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("the reminder job store is not open")
        return self._conn

    def _one(self, sql: str, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        with self._lock:
            row: tuple[Any, ...] | None = self._connection().execute(sql, args).fetchone()
            return row

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
        jobs, broken = [], []
        for job_id, state in rows:
            try:
                jobs.append(self._reconstitute(state))
            except Exception:  # a job from an incompatible version: drop it, keep the rest
                log.exception("cannot restore reminder job %s; removing it", job_id)
                broken.append(job_id)
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

    def __repr__(self) -> str:
        return f"<SQLiteJobStore {self._path}>"


def _owner(job: Job) -> str:
    return str(job.kwargs.get("user_id", ""))


def _ts(job: Job) -> float | None:
    return datetime_to_utc_timestamp(job.next_run_time)  # type: ignore[no-any-return]


def _state(job: Job) -> bytes:
    return pickle.dumps(job.__getstate__(), pickle.HIGHEST_PROTOCOL)
