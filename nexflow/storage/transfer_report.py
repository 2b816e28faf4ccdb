"""What ``nexflow migrate sqlite-to-postgres`` says around the copy: the flow runs in
flight (a refusal), where the files that are not rows live, and the per-table result."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from nexflow.storage.engine import redact
from nexflow.storage.transfer import Out, TableReport, TransferRefused

IN_FLIGHT = ("PENDING", "ENQUEUED", "DELAYED")  # DBOS statuses of unfinished runs


def flow_runs(flows_url: str) -> dict[str, int]:
    """DBOS's runs by status in a SQLite flows database (empty when there is none)."""
    if not flows_url.startswith("sqlite:///"):
        return {}
    path = Path(flows_url.removeprefix("sqlite:///"))
    if not path.is_file():
        return {}
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT status, COUNT(*) FROM workflow_status GROUP BY status")
        return {str(status): int(count) for status, count in rows}
    except sqlite3.OperationalError:  # DBOS never launched: no tables
        return {}
    finally:
        conn.close()


def refuse_in_flight(flows_url: str) -> str:
    """What the output says about the flows database; refuses while runs are unfinished."""
    if not flows_url.startswith("sqlite:///"):
        return f"flows: DBOS's database is {redact(flows_url)} (flows.database_url); not moved"
    where = flows_url.removeprefix("sqlite:///")
    runs = flow_runs(flows_url)
    unfinished = sum(runs.get(s, 0) for s in IN_FLIGHT)
    if unfinished:
        raise TransferRefused(
            f"{unfinished} flow run(s) are in flight (pending or enqueued) in {where}: the "
            "durable engine's own tables are not copied across engines, so let them finish "
            "or stop them (GraphStudio's Flows page), stop the gateway, and run this again"
        )
    finished = sum(runs.values())
    if not finished:
        return "flows: no flow runs in flight, none recorded"
    return (
        f"flows: no flow runs in flight; the history of {finished} finished run(s) stays "
        f"in {where} (DBOS's tables are not moved across engines); new runs go to Postgres"
    )


def memory_note(memory_db: Path, notes_dir: Path, pages_moved: bool) -> str:
    """Where the memory index goes (see :mod:`nexflow.storage.transfer`)."""
    pages = (
        f"its context pages (summaries of paged-out history) were copied from {memory_db} "
        "(memory_pages, memory_page_vectors above)"
        if pages_moved
        else f"no context pages to copy in {memory_db}"
    )
    return (
        f"memory: {pages}; its items are not copied: the index is rebuilt from the "
        f"Markdown notes in {notes_dir / 'memory'} on first use (every search compares "
        "the notes with the index; embeddings are computed again)"
    )


def workspace_note(workspaces: Path, notes_dir: Path) -> str:
    return (
        f"workspaces: the git repositories in {workspaces} and the notes and persona files "
        f"in {notes_dir} are files, not rows: put them on the volume every replica mounts "
        "(workspaces.root, workspace)"
    )


def render(reports: Sequence[TableReport], out: Out = print) -> bool:
    """The per-table table; True when every table matches."""
    width = max([len(r.name) for r in reports] + [5])
    out(f"{'table':<{width}}  {'source':>9}  {'target':>9}  {'sha256':<16}  result")
    for r in reports:
        digest = r.source_sum[:16] if r.ok else f"{r.source_sum[:16]} != {r.target_sum[:16]}"
        result = "OK" if r.ok else "MISMATCH"
        out(f"{r.name:<{width}}  {r.source_rows:>9,}  {r.target_rows:>9,}  {digest:<16}  {result}")
    return all(r.ok for r in reports)
