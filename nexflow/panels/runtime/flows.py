"""Flows started by a panel: a handler's ``$emit('run_flow', {flow, args})`` (docs/panels.md).

The handler only records the request, like any effect; once its state is committed,
:func:`start_flows` asks the composition root's :class:`FlowStarter` to start each
requested flow **as the panel's owner** and answers one :class:`FlowStart`-shaped JSON
object per request (``ok`` with ``run_id``, or ``error``), which the call's outcome
carries as ``flows`` and its toasts show. Nothing here raises: a refusal is an answer.

Trust: panel state is not taint-tracked (a panel may hold what it fetched or what a
tainted turn wrote), and the arguments come from the handler, so every such run starts
tainted by ``panel:<instance id>``, like a webhook's run by ``webhook:<name>``.

Idempotency: the run id is derived from the panel, the event that pressed the Action
(a chat event's id, an HTTP ``Idempotency-Key``) and the request's position, so a
retried event starts its run once; without an event id every call starts a new run.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from nexflow.panels.runtime.errors import PanelRuntimeError
from nexflow.sandbox import JSONObject, JSONValue

RUN_FLOW = "run_flow"
MAX_FLOWS_PER_CALL = 5


class FlowRefused(PanelRuntimeError):
    """A flow was not started; ``message`` says why (unknown flow, bad args, flows off)."""

    code = "flow_refused"


class FlowStarter(Protocol):
    """Starts a run of ``owner``'s flow; the gateway implements it over ``FlowService``.

    Returns the run id (the same id for the same ``run_id``: a run starts once), or
    raises :class:`FlowRefused` with a message safe to show.
    """

    async def start_flow(
        self,
        owner: str,
        flow: str,
        args: Mapping[str, Any],
        *,
        run_id: str,
        source: str,
        channel: str,
        chat_id: str,
    ) -> str: ...


def run_id_for(panel_id: str, event_id: str | None, index: int) -> str:
    """``panel-<digest>``: stable for one event and request, fresh without an event id."""
    event = event_id if event_id else uuid.uuid4().hex
    digest = hashlib.sha256(f"{panel_id}\0{event}\0{index}".encode()).hexdigest()[:24]
    return f"panel-{digest}"


def requests_of(effects: Sequence[JSONObject]) -> list[JSONValue]:
    """The payloads of the ``run_flow`` emits, in order."""
    return [
        e.get("payload") for e in effects if e.get("kind") == "emit" and e.get("event") == RUN_FLOW
    ]


def _parse(payload: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(payload, dict) or not isinstance(payload.get("flow"), str):
        raise FlowRefused("run_flow needs {flow: '<name>', args: {...}}")
    args = payload.get("args", {})
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise FlowRefused(f"run_flow '{payload['flow']}': args must be an object")
    extra = set(payload) - {"flow", "args"}
    if extra:
        raise FlowRefused(f"run_flow: unknown key(s) {', '.join(sorted(extra))}")
    return payload["flow"], args


async def start_flows(
    starter: FlowStarter | None,
    *,
    owner: str,
    caller: str | None,
    panel_id: str,
    effects: Sequence[JSONObject],
    event_id: str | None,
    channel: str,
    chat_id: str,
) -> tuple[JSONObject, ...]:
    """Start the flows a committed call asked for; one answer per request."""
    out: list[JSONObject] = []
    for index, payload in enumerate(requests_of(effects)):
        name = payload.get("flow") if isinstance(payload, dict) else None
        answer: JSONObject = {"flow": name if isinstance(name, str) else None}
        try:
            flow, args = _parse(payload)
            if starter is None:
                raise FlowRefused("flows are not enabled in this gateway")
            if caller is not None and caller != owner:
                raise FlowRefused("only the panel's owner can start flows from it")
            if index >= MAX_FLOWS_PER_CALL:
                raise FlowRefused(f"at most {MAX_FLOWS_PER_CALL} flows per call")
            run_id = await starter.start_flow(
                owner,
                flow,
                args,
                run_id=run_id_for(panel_id, event_id, index),
                source=f"panel:{panel_id}",
                channel=channel,
                chat_id=chat_id,
            )
        except FlowRefused as exc:
            label = f"flow '{name}'" if isinstance(name, str) else "flow"
            answer.update(
                ok=False, error=exc.message, message=f"⚠ {label} not started: {exc.message}"
            )
        else:
            answer.update(ok=True, run_id=run_id, message=f"flow '{flow}' started (run {run_id})")
        out.append(answer)
    return tuple(out)


__all__ = [
    "MAX_FLOWS_PER_CALL",
    "RUN_FLOW",
    "FlowRefused",
    "FlowStarter",
    "requests_of",
    "run_id_for",
    "start_flows",
]
