"""The DBOS workflows and steps that run flows. Imported lazily (DBOS costs ~0.5 s).

**Process-global state, isolated here.** DBOS is a process-wide singleton and registers
workflow functions by decorator at import, so the functions below cannot receive the
engine's :class:`FlowHost` as an argument on recovery. :data:`_binding` holds the one
active host; :func:`bind` refuses a second engine while one is bound (see
``FlowEngine``). Nothing else in Nexflow reads it.

Shape of a run (deterministic, so DBOS can replay it):

- ``nexflow.flows.run`` (the run, enqueued on the flows queue): a loop of *waves*. Each
  wave asks the :class:`Scheduler` which nodes are ready, starts one child workflow per
  ready node (id ``<run id>:<node id>``) in file order, then collects their results in
  the same order; parallel nodes of a wave run concurrently. After each wave it
  publishes progress (skipped nodes, tokens) as a DBOS event and checks the budget.
- ``nexflow.flows.node`` (one per node execution): attempts as steps with durable
  backoff sleeps between them, an approval as a step (post the card) then ``recv`` with
  the expiry as timeout, a wait as a durable sleep, a sub-flow as a child run.

A chat turn's skill run handed to a worker (``skills.run_on: workers``,
:mod:`nexflow.skills.remote`) is ``nexflow.skills.run``: one step that spawns the skill
through the runner the worker bound with :func:`bind_skills` (a second process-wide slot,
for the same reason as :data:`_binding`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from dbos import DBOS, SetWorkflowID
from pydantic import TypeAdapter

from nexflow.flows import expr, nodes
from nexflow.flows.clearance import Clearance, clearance, upstream
from nexflow.flows.errors import EngineUnavailable, ExprError, FlowError, RunFailed
from nexflow.flows.graph import NodeState, Outcome, Scheduler
from nexflow.flows.host import FlowHost, RunInfo
from nexflow.flows.model import (
    ApprovalNode,
    Flow,
    Node,
    SubFlowNode,
    WaitNode,
    bind_inputs,
)

# DBOS recovers only workflows of the running application version, which it would
# otherwise derive from a hash of this file: any edit would orphan parked runs on
# upgrade. Bump this only when the workflows' step sequence changes incompatibly.
APP_VERSION = "nexflow-flows-1"
SKILL_WORKFLOW = "nexflow.skills.run"
SKILL_STEP = "nexflow.skills.spawn"
SKILL_RESULT_EVENT = "nexflow.skills.result"  # set when the spawn is done: wakes the gateway
RUN_WORKFLOW = "nexflow.flows.run"
NODE_WORKFLOW = "nexflow.flows.node"
ATTEMPT_STEP = "nexflow.flows.attempt"
PROGRESS_EVENT = "nexflow.progress"
APPROVAL_TOPIC = "nexflow.approval"
MAX_SUBFLOW_DEPTH = 4

_NODE = TypeAdapter[Node](Node)


@dataclass(slots=True)
class _Binding:
    host: FlowHost
    owner: object  # the engine holding the binding
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)


_binding: _Binding | None = None
SkillRun = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
_skills: SkillRun | None = None  # a worker's skill runs (nexflow.skills.remote)


def bind(host: FlowHost, owner: object) -> None:
    """Make ``host`` the one the workflows call; refuse if another engine holds it."""
    global _binding  # noqa: PLW0603 - the documented process-wide slot
    if _binding is not None and _binding.owner is not owner:
        raise EngineUnavailable(
            "another flow engine is already running in this process (DBOS is a "
            "process-wide singleton); stop it first"
        )
    _binding = _Binding(host, owner)


def bind_skills(run: SkillRun | None) -> None:
    """What ``nexflow.skills.run`` calls in this process (a worker's); None: nothing."""
    global _skills  # noqa: PLW0603 - the documented process-wide slot
    _skills = run


def unbind(owner: object) -> None:
    global _binding  # noqa: PLW0603 - the documented process-wide slot
    if _binding is not None and _binding.owner is owner:
        _binding = None


async def cancel_local_tasks() -> None:
    """Cancel this process's running workflow tasks, as a crash would: nothing is
    recorded, and DBOS resumes them when the same executor id launches again."""
    if _binding is None:
        return
    tasks = [t for t in _binding.tasks if not t.done()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    _binding.tasks.clear()


@contextlib.contextmanager
def _tracked() -> Iterator[None]:
    task = asyncio.current_task()
    binding = _binding
    if binding is None or task is None:
        raise EngineUnavailable("no flow engine is running")
    binding.tasks.add(task)
    try:
        yield
    finally:
        binding.tasks.discard(task)


def _host() -> FlowHost:
    if _binding is None:
        raise EngineUnavailable("no flow engine is running")
    return _binding.host


def node_workflow_id(run_id: str, node_id: str) -> str:
    return f"{run_id}:{node_id}"


@DBOS.step(name=ATTEMPT_STEP)
async def attempt_step(
    run: dict[str, Any], node_id: str, node: dict[str, Any], scope: dict[str, Any], attempt: int
) -> dict[str, Any]:
    info = RunInfo.from_data(run)
    started = time.time()
    out = await nodes.run_attempt(
        _host(), info, node_id, _NODE.validate_python(node), scope, attempt
    )
    return out | {"started_at": started, "finished_at": time.time()}


@DBOS.step(name="nexflow.flows.ask")
async def ask_step(run: dict[str, Any], node_id: str, title: str, detail: str) -> None:
    await _host().ask(RunInfo.from_data(run), node_id, title, detail)


@DBOS.step(name="nexflow.flows.now")
async def now_step() -> float:
    return time.time()


@DBOS.step(name="nexflow.flows.load")
async def load_step(owner: str, name: str) -> dict[str, Any]:
    try:
        return {"flow": _host().load_flow(owner, name).to_data()}
    except FlowError as e:
        return {"error": e.message}


@DBOS.workflow(name=NODE_WORKFLOW)
async def node_workflow(
    run: dict[str, Any], node_id: str, node_data: dict[str, Any], scope: dict[str, Any]
) -> dict[str, Any]:
    with _tracked():
        return await _node(run, node_id, node_data, scope)


async def _node(
    run: dict[str, Any], node_id: str, node_data: dict[str, Any], scope: dict[str, Any]
) -> dict[str, Any]:
    node = _NODE.validate_python(node_data)
    if isinstance(node, ApprovalNode):
        return await _approval(run, node_id, node, scope)
    if isinstance(node, WaitNode):
        seconds = node.seconds
        if seconds is None:
            assert node.until is not None
            seconds = node.until.timestamp() - await now_step()
        await DBOS.sleep_async(max(0.0, seconds))
        return nodes.outcome(True, {"waited_s": round(max(0.0, seconds), 3)}) | {"attempts": 1}
    if isinstance(node, SubFlowNode):
        return await _subflow(run, node, scope)
    total = {"tokens_in": 0, "tokens_out": 0, "tool_calls": 0}
    out: dict[str, Any] = {}
    attempt = 1
    first_start: float | None = None
    for attempt in range(1, node.retry.tries + 1):
        out = await attempt_step(run, node_id, node_data, scope, attempt)
        first_start = first_start or out["started_at"]
        for k in total:
            total[k] += int(out.get(k) or 0)
        if out["ok"] or attempt == node.retry.tries:
            break
        await DBOS.sleep_async(node.retry.delay(attempt))
    return out | total | {"attempts": attempt, "started_at": first_start}


async def _approval(
    run: dict[str, Any], node_id: str, node: ApprovalNode, scope: dict[str, Any]
) -> dict[str, Any]:
    try:
        title = str(expr.interpolate(node.title, scope))
        detail = str(expr.interpolate(node.detail, scope))
    except ExprError as e:
        return nodes.outcome(False, error=e.message) | {"attempts": 1}
    await ask_step(run, node_id, title, detail)
    answer = await DBOS.recv_async(APPROVAL_TOPIC, timeout_seconds=node.expires_s)
    if not isinstance(answer, dict):
        return nodes.outcome(False, {"approved": False}, "approval expired") | {"attempts": 1}
    by = str(answer.get("by", ""))
    if answer.get("approved"):
        return nodes.outcome(True, {"approved": True, "by": by}) | {"attempts": 1}
    return nodes.outcome(False, {"approved": False, "by": by}, f"declined by {by}") | {
        "attempts": 1
    }


async def _subflow(run: dict[str, Any], node: SubFlowNode, scope: dict[str, Any]) -> dict[str, Any]:
    wfid = DBOS.workflow_id
    assert wfid is not None
    if wfid.count(":") > MAX_SUBFLOW_DEPTH * 2:
        return nodes.outcome(False, error="sub-flows nested too deep") | {"attempts": 1}
    info = RunInfo.from_data(run)
    loaded = await load_step(info.owner, node.flow)
    if "error" in loaded:
        return nodes.outcome(False, error=loaded["error"]) | {"attempts": 1}
    try:
        args = expr.interpolate(node.args, scope)
    except ExprError as e:
        return nodes.outcome(False, error=e.message) | {"attempts": 1}
    flow = Flow.model_validate(loaded["flow"])
    inputs, problems = bind_inputs(flow, args)
    if problems:
        return nodes.outcome(False, error="; ".join(problems)) | {"attempts": 1}
    sub_id = f"{wfid}:sub"
    sub = replace(info, run_id=sub_id, flow=flow.name)
    with SetWorkflowID(sub_id):
        handle = await DBOS.start_workflow_async(
            run_workflow, flow.to_data(), inputs, sub.to_data()
        )
    try:
        result = await handle.get_result()
    except RunFailed as e:
        return nodes.outcome(False, error=f"sub-flow {flow.name}: {e.message}") | {"attempts": 1}
    out = nodes.outcome(True, result["outputs"], tokens_in=result["tokens"]) | {"attempts": 1}
    if result.get("untrusted"):  # what the sub-flow saw taints what reads its outputs
        out["untrusted"] = result["untrusted"]
    return out


@DBOS.workflow(name=RUN_WORKFLOW)
async def run_workflow(
    flow_data: dict[str, Any], inputs: dict[str, Any], run_data: dict[str, Any]
) -> dict[str, Any]:
    with _tracked():
        return await _run(flow_data, inputs, run_data)


async def _run(
    flow_data: dict[str, Any], inputs: dict[str, Any], run_data: dict[str, Any]
) -> dict[str, Any]:
    flow = Flow.model_validate(flow_data)
    wfid = DBOS.workflow_id
    assert wfid is not None
    info = replace(RunInfo.from_data(run_data), run_id=wfid)
    inherited = Clearance(info.tainted, info.approved_by)
    ups = upstream(flow)
    node_data = {nid: n.model_dump(mode="json", by_alias=True) for nid, n in flow.nodes.items()}
    scheduler = Scheduler(flow)
    outcomes: dict[str, Outcome] = {}
    results: dict[str, dict[str, Any]] = {}
    skipped: list[str] = []
    tokens = 0
    while True:
        ready, newly_skipped = scheduler.step(outcomes)
        for nid in newly_skipped:
            outcomes[nid] = Outcome(NodeState.SKIPPED)
            results[nid] = {"ok": False, "status": "skipped", "output": None, "error": None}
        skipped.extend(newly_skipped)
        if not ready:
            break
        scope = {"inputs": inputs, "nodes": results}
        handles = []
        for nid in ready:
            cleared = clearance(flow, nid, results, inherited, ups)
            run = replace(info, tainted=cleared.tainted, approved_by=cleared.approved_by)
            with SetWorkflowID(node_workflow_id(wfid, nid)):
                handles.append(
                    await DBOS.start_workflow_async(
                        node_workflow, run.to_data(), nid, node_data[nid], scope
                    )
                )
        fatal: str | None = None
        for nid, handle in zip(ready, handles, strict=True):
            out = await handle.get_result()
            tokens += int(out.get("tokens_in") or 0) + int(out.get("tokens_out") or 0)
            state = _state(flow.nodes[nid], out)
            outcomes[nid] = Outcome(state, out.get("branch"))
            results[nid] = {
                "ok": bool(out["ok"]),
                "status": "done" if out["ok"] else "failed",
                "output": out.get("output"),
                "error": out.get("error"),
            }
            if out.get("untrusted"):
                results[nid]["untrusted"] = list(out["untrusted"])
            if not out["ok"] and flow.nodes[nid].on_error is None and fatal is None:
                fatal = nid
        await DBOS.set_event_async(PROGRESS_EVENT, {"skipped": skipped, "tokens": tokens})
        if fatal is not None:
            raise RunFailed(f"node '{fatal}' failed: {results[fatal]['error'] or 'error'}")
        if flow.budget_tokens is not None and tokens > flow.budget_tokens:
            raise RunFailed(f"token budget exceeded: used {tokens} of {flow.budget_tokens}")
    outputs = {nid: r["output"] for nid, r in results.items() if r["status"] == "done"}
    untrusted = sorted({s for r in results.values() for s in r.get("untrusted") or ()})
    done: dict[str, Any] = {"tokens": tokens, "outputs": outputs}
    return done | {"untrusted": untrusted} if untrusted else done


def _state(node: Node, out: dict[str, Any]) -> NodeState:
    if out["ok"] or node.on_error == "continue":
        return NodeState.DONE
    return NodeState.FAILED


@DBOS.step(name=SKILL_STEP)
async def skill_step(request: dict[str, Any]) -> dict[str, Any]:
    if _skills is None:
        raise EngineUnavailable("this process runs no handed-off skills (not a worker)")
    return await _skills(request)


@DBOS.workflow(name=SKILL_WORKFLOW)
async def skill_workflow(request: dict[str, Any]) -> dict[str, Any]:
    """A skill run a gateway handed over (``skills.run_on: workers``): one step, so a
    worker killed mid-run spawns it again, with the same idempotency key, wherever the
    workflow is recovered. Its result is also set as the event
    :data:`SKILL_RESULT_EVENT`, which on Postgres reaches the waiting gateway by
    ``LISTEN/NOTIFY`` rather than at its next look at the workflow."""
    with _tracked():
        out = await skill_step(request)
        await DBOS.set_event_async(SKILL_RESULT_EVENT, out)
        return out
