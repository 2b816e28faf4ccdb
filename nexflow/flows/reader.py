"""Read runs back from DBOS's tables: statuses, node records, lists, fork points."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from types import ModuleType
from typing import Any

from dbos import DBOS, WorkflowStatus

from nexflow.flows.errors import FlowError, RunNotFound
from nexflow.flows.host import RunInfo
from nexflow.flows.model import Flow
from nexflow.flows.status import (
    OWNER_ATTR,
    ChildRecord,
    RunStatus,
    RunSummary,
    coarse_state,
    node_status,
    our_priority,
    progress,
    run_state,
)

_WAIT_POLL_S = 0.05


class RunReader:
    """Queries over DBOS workflows; imported only once DBOS is (see ``engine``)."""

    def __init__(self, durable: ModuleType) -> None:
        self._d = durable

    async def _workflow(self, run_id: str, owner: str | None) -> WorkflowStatus:
        ws = await DBOS.get_workflow_status_async(run_id)
        if ws is None or ws.name != self._d.RUN_WORKFLOW or ws.parent_workflow_id:
            raise RunNotFound("no such run")
        if owner is not None and (ws.attributes or {}).get(OWNER_ATTR) != owner:
            raise RunNotFound("no such run")
        return ws

    async def _children(self, run_id: str) -> dict[str, str]:
        """node id -> child workflow id, from the run's own step records (forks
        included: a fork's copied steps point at the original run's children)."""
        out: dict[str, str] = {}
        for step in await DBOS.list_workflow_steps_async(run_id, load_output=False):
            child = step.get("child_workflow_id")
            if child and step["function_name"] == self._d.NODE_WORKFLOW:
                out.setdefault(child.rsplit(":", 1)[1], child)
        return out

    async def start_step(self, run_id: str, node: str) -> int | None:
        """The function id at which the run started ``node`` (a fork point)."""
        for step in await DBOS.list_workflow_steps_async(run_id, load_output=False):
            child = step.get("child_workflow_id")
            if (
                child
                and step["function_name"] == self._d.NODE_WORKFLOW
                and child.rsplit(":", 1)[1] == node
            ):
                return int(step["function_id"])
        return None

    async def cancelled_descendants(self, run_id: str) -> list[str]:
        """Cancelled node workflows and sub-flow runs below ``run_id``, deepest first."""
        found: list[str] = []
        frontier = [run_id]
        while frontier:
            children = await DBOS.list_workflows_async(
                parent_workflow_id=frontier, load_input=False, load_output=False
            )
            frontier = [c.workflow_id for c in children]
            found.extend(c.workflow_id for c in children if c.status == "CANCELLED")
        return list(reversed(found))

    async def status(self, run_id: str, owner: str | None) -> RunStatus:
        ws = await self._workflow(run_id, owner)
        args: list[Any] = list(ws.input["args"]) if ws.input else []
        flow = Flow.model_validate(args[0])
        info = RunInfo.from_data(args[2])
        coarse = coarse_state(ws.status, ws.attributes)
        children = await self._children(run_id)
        records = await self._records(children)
        event = await DBOS.get_event_async(run_id, self._d.PROGRESS_EVENT, timeout_seconds=0)
        skipped = set((event or {}).get("skipped", ()))
        nodes = [
            node_status(
                nid,
                node.type,
                records.get(nid),
                skipped=nid in skipped,
                run_state=coarse,
            )
            for nid, node in flow.nodes.items()
        ]
        state = run_state(coarse, nodes)
        error = None
        if ws.error is not None:
            error = ws.error.message if isinstance(ws.error, FlowError) else "internal error"
        return RunStatus(
            run_id=run_id,
            flow=flow.name,
            owner=info.owner,
            origin=info.origin,
            status=state,
            priority=our_priority(ws.priority),
            created_at=ws.created_at / 1000 if ws.created_at else None,
            updated_at=ws.updated_at / 1000 if ws.updated_at else None,
            progress=100 if state == "completed" else progress(nodes),
            tokens_in=sum(n.tokens_in for n in nodes),
            tokens_out=sum(n.tokens_out for n in nodes),
            error=error,
            nodes=nodes,
            forked_from=ws.forked_from,
            output=ws.output if isinstance(ws.output, dict) else None,
            untrusted=tuple(
                dict.fromkeys([*info.tainted, *(u for n in nodes for u in n.untrusted)])
            ),
        )

    async def _records(self, children: dict[str, str]) -> dict[str, ChildRecord]:
        if not children:
            return {}
        by_id = {c: n for n, c in children.items()}
        found = await DBOS.list_workflows_async(workflow_ids=list(by_id), load_input=False)
        out: dict[str, ChildRecord] = {}
        for w in found:
            attempts = 0
            if w.status != "SUCCESS":
                steps = await DBOS.list_workflow_steps_async(w.workflow_id, load_output=False)
                attempts = sum(1 for s in steps if s["function_name"] == self._d.ATTEMPT_STEP)
            out[by_id[w.workflow_id]] = ChildRecord(
                w.status, w.output, w.created_at, w.updated_at, attempts
            )
        return out

    async def wait(
        self, run_id: str, owner: str | None, timeout_s: float, states: Collection[str]
    ) -> RunStatus:
        deadline = time.monotonic() + timeout_s
        while True:
            run = await self.status(run_id, owner)
            if run.status in states or time.monotonic() > deadline:
                return run
            await asyncio.sleep(_WAIT_POLL_S)

    async def list_runs(
        self, owner: str | None, status: str | None, limit: int
    ) -> list[RunSummary]:
        found = await DBOS.list_workflows_async(
            name=self._d.RUN_WORKFLOW,
            has_parent=False,
            load_input=False,
            load_output=False,
            sort_desc=True,
        )
        # DBOS cannot filter by attributes on SQLite; filter here (Postgres could).
        if owner is not None:
            found = [w for w in found if (w.attributes or {}).get(OWNER_ATTR) == owner]
        runs = [
            RunSummary(
                run_id=w.workflow_id,
                flow=str((w.attributes or {}).get("nexflow_flow", "")),
                owner=str((w.attributes or {}).get(OWNER_ATTR, "")),
                status=coarse_state(w.status, w.attributes),
                priority=our_priority(w.priority),
                created_at=w.created_at / 1000 if w.created_at else None,
                updated_at=w.updated_at / 1000 if w.updated_at else None,
                forked_from=w.forked_from,
            )
            for w in found
        ]
        return [r for r in runs if status is None or r.status == status][:limit]
