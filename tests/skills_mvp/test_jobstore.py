"""The APScheduler job store on SQLite and on Postgres: the same table and queries, and
on Postgres due jobs claimed so that one of several replicas runs each."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_SUBMITTED
from apscheduler.jobstores.base import ConflictingIdError, JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger

from nexflow.tasks.engine import STORE
from nexflow.tasks.jobstore import (
    CLAIM_LEASE_S,
    PostgresJobStore,
    SQLiteJobStore,
    SQLJobStore,
    job_store_for,
)

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    if request.param == "sqlite":
        return tmp_path / "nexflow.db"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def scheduler(target: Path | str) -> Iterator[tuple[BackgroundScheduler, SQLJobStore]]:
    store = job_store_for(target)
    sched = BackgroundScheduler(timezone=UTC, jobstores={"s": store})
    sched.start(paused=True)  # stores jobs, runs none
    yield sched, store
    sched.shutdown(wait=False)


def add(sched: BackgroundScheduler, jid: str, user: str, when: datetime) -> None:
    sched.add_job(
        "nexflow.tasks.service:reminder_job",
        DateTrigger(when),
        id=jid,
        kwargs={"user_id": user},
        jobstore="s",
    )


def test_the_store_for_a_target(tmp_path: Path) -> None:
    assert isinstance(job_store_for(tmp_path / "x.db"), SQLiteJobStore)
    assert isinstance(job_store_for(f"sqlite:///{tmp_path}/x.db"), SQLiteJobStore)
    pg = job_store_for("postgresql://u:secret@h/db", table="flow_trigger_jobs")
    assert isinstance(pg, PostgresJobStore) and "secret" not in repr(pg)
    with pytest.raises(ValueError):
        job_store_for("mysql://h/db")


def test_jobs_are_stored_listed_and_removed(
    scheduler: tuple[BackgroundScheduler, SQLJobStore],
) -> None:
    sched, store = scheduler
    add(sched, "late", "ana", NOW + timedelta(hours=2))
    add(sched, "soon", "ana", NOW + timedelta(hours=1))
    add(sched, "bo1", "bo", NOW + timedelta(hours=3))
    with pytest.raises(ConflictingIdError):
        store.add_job(store.lookup_job("soon"))

    assert [j.id for j in store.jobs_of("ana")] == ["soon", "late"]
    assert store.count_of("ana") == 2 and store.count_of("nobody") == 0
    assert store.owners() == ["ana", "bo"] and store.owner_of("bo1") == "bo"
    assert store.owner_of("missing") is None and store.lookup_job("missing") is None
    job = store.lookup_job("late")
    assert job is not None and job.kwargs == {"user_id": "ana"}
    assert store.get_next_run_time() == NOW + timedelta(hours=1)
    assert [j.id for j in store.get_all_jobs()] == ["soon", "late", "bo1"]

    job.next_run_time = NOW + timedelta(hours=4)
    store.update_job(job)
    assert [j.id for j in store.jobs_of("ana")] == ["soon", "late"]
    assert store.lookup_job("late").next_run_time == NOW + timedelta(hours=4)  # type: ignore[union-attr]
    store.remove_job("late")
    with pytest.raises(JobLookupError):
        store.remove_job("late")
    with pytest.raises(JobLookupError):
        store.update_job(job)
    store.remove_all_jobs()
    assert store.get_all_jobs() == [] and store.get_next_run_time() is None


def test_a_due_job_is_claimed_by_one_replica(pg_url: str) -> None:
    first, second = PostgresJobStore(pg_url), PostgresJobStore(pg_url)
    sched = BackgroundScheduler(timezone=UTC, jobstores={"s": first})
    sched.start(paused=True)
    second.open()
    try:
        add(sched, "due", "ana", NOW - timedelta(minutes=1))
        add(sched, "later", "ana", NOW + timedelta(hours=1))
        assert [j.id for j in first.get_due_jobs(NOW)] == ["due"]
        assert second.get_due_jobs(NOW) == []  # claimed: the other replica skips it
        # The claiming replica died before storing the next run: the lease runs out.
        after = NOW + timedelta(seconds=CLAIM_LEASE_S + 1)
        (retried,) = second.get_due_jobs(after)
        assert retried.id == "due" and retried.next_run_time == NOW - timedelta(minutes=1)
        second.remove_job("due")  # what APScheduler does with a date job that ran
        assert first.get_due_jobs(after) == []
    finally:
        second.shutdown()
        sched.shutdown(wait=False)


def test_another_table_is_created_on_postgres(pg_url: str) -> None:
    store = PostgresJobStore(pg_url, table="flow_trigger_jobs")
    sched = BackgroundScheduler(timezone=UTC, jobstores={"s": store})
    sched.start(paused=True)
    try:
        add(sched, "t1", "ana", NOW + timedelta(hours=1))
        assert [j.id for j in store.jobs_of("ana")] == ["t1"]
    finally:
        sched.shutdown(wait=False)


def test_two_schedulers_on_one_database_run_a_reminder_once(pg_url: str) -> None:
    """Two replicas' schedulers (threads of their own) wake up at the same moment with the
    same eight due reminders: each runs once (without the claim, both run some and the
    second one's removal of a job the first removed fails)."""
    submitted: list[tuple[int, str]] = []
    schedulers = [
        BackgroundScheduler(timezone=UTC, jobstores={STORE: PostgresJobStore(pg_url)})
        for _ in range(2)
    ]
    for i, sched in enumerate(schedulers):
        sched.add_listener(
            lambda event, i=i: submitted.append((i, event.job_id)), EVENT_JOB_SUBMITTED
        )
    try:
        for sched in schedulers:
            sched.start(paused=True)
        for n in range(8):
            schedulers[0].add_job(
                "builtins:dict",  # accepts the kwargs, does nothing
                DateTrigger(datetime.now(UTC) - timedelta(seconds=1)),
                id=f"r{n}",
                kwargs={"user_id": "ana"},
                jobstore=STORE,
            )
        for sched in schedulers:
            sched.resume()  # both wake up now, with eight due jobs
        for _ in range(50):
            if len(submitted) >= 8 and not schedulers[0].get_jobs():
                break
            time.sleep(0.05)
        time.sleep(0.2)  # time for a second run, if there were one
        assert sorted(job for _, job in submitted) == [f"r{n}" for n in range(8)]
    finally:
        for sched in schedulers:
            sched.shutdown()
