"""Run and node statuses as a task list shows them, built from DBOS's own records.

No table of our own: the run's DBOS workflow (status, input, attributes, the progress
event it publishes after each wave) and one child workflow per executed node (status,
output, timestamps, attempt steps) hold everything.

Run status: ``queued`` (waiting on the flows queue), ``running``, ``waiting`` (every
running node is an approval or a timer), ``paused``, ``completed``, ``failed``,
``cancelled`` (stopped). Node status: ``pending``, ``running``, ``waiting``,
``completed``, ``failed``, ``skipped``, ``paused``, ``cancelled``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from nexflow.flows.host import Origin
from nexflow.flows.nodes import preview

RunState = Literal[
    "pending", "queued", "running", "waiting", "paused", "completed", "failed", "cancelled"
]
NodeStatusName = Literal[
    "pending", "running", "waiting", "completed", "failed", "skipped", "paused", "cancelled"
]

CONTROL_ATTR = "nexflow_control"
OWNER_ATTR = "nexflow_owner"
FLOW_ATTR = "nexflow_flow"


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """One node of a run, as a stage in a task list."""

    node: str
    type: str
    status: NodeStatusName
    attempts: int = 0
    started_at: float | None = None  # epoch seconds
    finished_at: float | None = None
    duration_s: float | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    tool_calls: int = 0
    output_preview: str = ""
    error: str | None = None
    untrusted: tuple[str, ...] = ()  # sources of untrusted output the node saw


@dataclass(frozen=True, slots=True)
class RunSummary:
    """A run in a list (coarse status: ``waiting`` shows as ``running``)."""

    run_id: str
    flow: str
    owner: str
    status: RunState
    priority: int
    created_at: float | None
    updated_at: float | None
    forked_from: str | None = None


@dataclass(frozen=True, slots=True)
class RunStatus:
    """A run with its stages, progress 0-100 and token totals."""

    run_id: str
    flow: str
    owner: str
    origin: Origin
    status: RunState
    priority: int
    created_at: float | None
    updated_at: float | None
    progress: int
    tokens_in: int
    tokens_out: int
    error: str | None
    nodes: list[NodeStatus] = field(default_factory=list)
    forked_from: str | None = None
    output: dict[str, Any] | None = None
    # what made the run untrusted: its inputs' sources, then its nodes' (file order)
    untrusted: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RunStats:
    """Counts for a task list header."""

    total: int
    by_status: dict[str, int]
    by_flow: dict[str, int]


def our_priority(dbos_priority: int | None) -> int:
    """DBOS runs lower numbers first; ours runs 5 before 1: dbos = 6 - ours."""
    if not dbos_priority:
        return 3
    return max(1, min(5, 6 - dbos_priority))


def dbos_priority(priority: int) -> int:
    return 6 - priority


def coarse_state(dbos_status: str, attributes: dict[str, Any] | None) -> RunState:
    control = (attributes or {}).get(CONTROL_ATTR)
    if dbos_status == "ENQUEUED":
        return "queued"
    if dbos_status == "PENDING":
        return "running"
    if dbos_status == "SUCCESS":
        return "completed"
    if dbos_status == "CANCELLED":
        return "paused" if control == "paused" else "cancelled"
    return "failed"


def _ms(value: int | None) -> float | None:
    return value / 1000 if value else None


@dataclass(frozen=True, slots=True)
class ChildRecord:
    """A node's child workflow as read from DBOS."""

    status: str
    output: Any
    created_at: int | None
    updated_at: int | None
    attempts_running: int = 0


def node_status(
    nid: str,
    ntype: str,
    child: ChildRecord | None,
    *,
    skipped: bool,
    run_state: RunState,
) -> NodeStatus:
    if child is None:
        return NodeStatus(nid, ntype, "skipped" if skipped else "pending")
    started = _ms(child.created_at)
    if child.status == "SUCCESS" and isinstance(child.output, dict):
        out = child.output
        # our own timestamps when the node recorded them (SQLite's are whole seconds)
        started = out.get("started_at") or started
        finished = out.get("finished_at") or _ms(child.updated_at)
        return NodeStatus(
            node=nid,
            type=ntype,
            status="completed" if out.get("ok") else "failed",
            attempts=int(out.get("attempts") or 1),
            started_at=started,
            finished_at=finished,
            duration_s=round(finished - started, 3) if finished and started else None,
            tokens_in=int(out.get("tokens_in") or 0),
            tokens_out=int(out.get("tokens_out") or 0),
            tool_calls=int(out.get("tool_calls") or 0),
            output_preview=preview(out.get("output")),
            error=out.get("error"),
            untrusted=tuple(str(u) for u in out.get("untrusted") or ()),
        )
    if child.status in ("PENDING", "ENQUEUED"):
        parked = ntype in ("approval", "wait")
        return NodeStatus(
            nid,
            ntype,
            "waiting" if parked else "running",
            attempts=child.attempts_running,
            started_at=started,
        )
    if child.status == "CANCELLED":
        name: NodeStatusName = "paused" if run_state == "paused" else "cancelled"
        return NodeStatus(nid, ntype, name, attempts=child.attempts_running, started_at=started)
    return NodeStatus(nid, ntype, "failed", started_at=started, error="internal error")


def run_state(coarse: RunState, nodes: list[NodeStatus]) -> RunState:
    if coarse != "running":
        return coarse
    active = [n for n in nodes if n.status in ("running", "waiting")]
    if active and all(n.status == "waiting" for n in active):
        return "waiting"
    return "running"


def progress(nodes: list[NodeStatus]) -> int:
    if not nodes:
        return 0
    finished = sum(1 for n in nodes if n.status in ("completed", "failed", "skipped"))
    return int(100 * finished / len(nodes))
