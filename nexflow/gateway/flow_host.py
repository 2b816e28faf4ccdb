"""``GatewayFlowHost``: what a flow run does through the gateway (``docs/flows.md``).

It implements :class:`nexflow.flows.host.FlowHost` with the same rules as a chat turn:

- **Owned.** A tool node runs as the run's owner (their role and permissions, as chat
  turns get them) and only finds the owner's tools (``Toolbox.tools_for``): another
  user's panel tool is unknown.
- **Never auto-approved.** Tools run with a ``confirm`` that never asks: a call that
  needs the user's confirmation (a dangerous skill, a panel tool, a write or egress after
  untrusted output) is refused with an error that says to put an ``approval`` node
  before it — unless the node is cleared by an approval upstream of it, answered yes
  after every untrusted output on its path (``RunInfo.approved_by``, decided by graph
  position in :mod:`nexflow.flows.clearance`).
- **Taint.** A tool whose output is untrusted (the trust gate decides) returns its
  sources in ``NodeResult.untrusted``; the nodes downstream of it are tainted
  (``RunInfo.tainted``): their tool calls go through the gate as after untrusted output,
  and agent nodes start their turn tainted. Taint on a parallel branch the node cannot
  read does not reach it.
- **At least once, applied once.** Tool and agent results are stored by their
  idempotency key (``flow_tool_results``); a replayed step gets the stored result. A
  crash after the tool ran but before its result was stored runs it again: the tool gets
  the key (``ToolContext.idempotency_key``) and one with a side effect applies it once
  per key (``memory_save`` does).
- **One budget gate.** Agent nodes run one orchestrator turn whose model calls go
  through the budget gate for the owner; tokens are summed from its ``llm_call`` audit.
- **Named agents.** An agent node may name ``agents/<name>.yaml``
  (:mod:`nexflow.flows.agents`): its persona, tools, route and token cap, the node's
  own ``tools`` / ``route`` overriding; each such call is recorded in
  ``agent_invocations``. :meth:`GatewayFlowHost.agent_turn` is the one agent turn, for
  flow nodes and for agents invoked on their own (:mod:`nexflow.gateway.agents`).
- **Asked once.** ``ask`` stores a flow approval and queues its card on the durable
  outbox, once per (run, node) (:meth:`ApprovalService.ask_flow`).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import structlog

from nexflow.bus.events import InboundEvent
from nexflow.config.model import PermissionsConfig
from nexflow.flows.agents import AgentDef, load_agent
from nexflow.flows.errors import FlowError
from nexflow.flows.host import NodeResult, RunInfo
from nexflow.flows.loader import load_flow
from nexflow.flows.model import FLOW_NAME, ApprovalNode, Flow
from nexflow.gateway.agent_turn import AgentTurn, Allowlisted, Routed, invocation
from nexflow.gateway.approvals import ApprovalService
from nexflow.orchestrator.agent import ModelSource, Orchestrator
from nexflow.storage.base import Audit, AuditRecord, SessionRecord
from nexflow.storage.repo_agents import AgentInvocation
from nexflow.storage.repo_flows import FlowStorage
from nexflow.tools.base import (
    ApprovalRequired,
    Tool,
    ToolContext,
    ToolError,
    ToolResult,
    UnknownTool,
)
from nexflow.tools.toolset import Toolbox
from nexflow.trust import TrustGate, effects_of

log = structlog.get_logger("nexflow.flows.host")
ERROR_CHARS = 500


class OrchestratorFactory(Protocol):
    """Builds a turn's orchestrator; ``persona`` is extra system prompt text."""

    def __call__(
        self, models: ModelSource, tools: Toolbox, /, *, persona: str = ""
    ) -> Orchestrator: ...


class HostStorage(FlowStorage, Audit, Protocol):
    async def save_agent_invocation(self, record: AgentInvocation) -> None: ...


class FlowNotFound(FlowError):
    """The user has no flow of that name (or its name is not a valid flow name)."""


def flow_file(folder: Path, name: str) -> Path:
    """``flows/<name>.yaml`` in ``folder``; :class:`FlowNotFound` for a bad name."""
    if not re.match(FLOW_NAME, name):
        raise FlowNotFound(f"no flow named '{name}' (names: a-z, 0-9, '-', '_')")
    return folder / "flows" / f"{name}.yaml"


class GatewayFlowHost:
    """The gateway side of flow runs; see the module docstring."""

    def __init__(
        self,
        store: HostStorage,
        toolbox: Toolbox,
        orchestrator: OrchestratorFactory,
        models: ModelSource,
        approvals: ApprovalService,
        permissions: PermissionsConfig,
        *,
        tool_timeout_s: float = 600.0,
    ) -> None:
        self._store = store
        self._toolbox = toolbox
        self._orchestrator = orchestrator
        self._models = models
        self._approvals = approvals
        self._permissions = permissions
        self._tool_timeout_s = tool_timeout_s
        self._gate = TrustGate()
        # the owner's default workspace folder; set by the flow service once workspaces run
        self.folder: Callable[[str], Path] | None = None

    # -- who --------------------------------------------------------------------------

    async def context(self, run: RunInfo) -> ToolContext:
        return await self.owner_context(
            run.owner,
            f"flow:{run.run_id}",
            run.origin.channel or "flow",
            run.origin.chat_id or run.run_id,
            run.tainted,
        )

    async def owner_context(
        self,
        user_id: str,
        session_id: str,
        channel: str,
        chat_id: str,
        tainted: tuple[str, ...] = (),
    ) -> ToolContext:
        """``user_id``'s context: their role and permissions, as chat turns get them."""
        role = await self._store.user_role(user_id) or "user"
        return ToolContext(
            user_id=user_id,
            session_id=session_id,
            channel=channel,
            chat_id=chat_id,
            permissions=self._permissions.granted(role, user_id),
            role=role,
            tainted=tainted,
        )

    @staticmethod
    def _confirm(run: RunInfo) -> Callable[[str, str], Any]:
        async def confirm(title: str, detail: str) -> bool:
            if run.approved_by:
                return True
            raise ApprovalRequired(title, detail)

        return confirm

    # -- tools ------------------------------------------------------------------------

    async def call_tool(
        self,
        run: RunInfo,
        node: str,
        tool: str,
        args: Mapping[str, Any],
        idempotency_key: str,
    ) -> NodeResult:
        stored = await self._store.flow_result(idempotency_key)
        if stored is not None:
            return _result(stored)
        ctx = await self.context(run)
        started = time.perf_counter()
        outcome, untrusted = "ok", False
        try:
            found = self._toolbox.tools_for(ctx).get(tool)
        except UnknownTool:
            return NodeResult(False, error=f"no tool named '{tool}' for this user")
        try:
            result = await self._gated(found, dict(args), ctx, run, idempotency_key)
            untrusted = self._gate.untrusted(found, args, result)
            outcome = "error" if result.is_error else "ok"
            sources = (effects_of(found, args).label,) if untrusted else ()
            node_result = (
                NodeResult(False, error=_clip(result.content), tool_calls=1, untrusted=sources)
                if result.is_error
                else NodeResult(True, output=_output(result), tool_calls=1, untrusted=sources)
            )
        except ApprovalRequired:
            outcome = "refused"
            node_result = NodeResult(
                False,
                error=(
                    f"'{tool}' needs the user's confirmation and flows never approve on "
                    "their own: put an `approval` node before this node (answered after "
                    "any untrusted output in the run)"
                ),
            )
        except ToolError as exc:
            outcome, node_result = "error", NodeResult(False, error=_clip(exc.message))
        except TimeoutError:
            outcome = "timeout"
            node_result = NodeResult(
                False, error=f"the tool did not finish within {self._tool_timeout_s:.0f} s"
            )
        data: dict[str, Any] = {
            "arguments": json.dumps(dict(args), default=str)[:2000],
            "duration_s": round(time.perf_counter() - started, 4),
            "flow_run": run.run_id,
            "node": node,
        }
        if untrusted:
            data["untrusted"] = True
        await self._store.audit(
            [AuditRecord("tool_call", tool, outcome, run.owner, f"flow:{run.run_id}", data)]
        )
        saved = await self._store.save_flow_result(
            idempotency_key, run.run_id, run.owner, _data(node_result)
        )
        return _result(saved)

    async def _gated(
        self, tool: Tool, args: dict[str, Any], ctx: ToolContext, run: RunInfo, key: str
    ) -> ToolResult:
        ctx = ToolContext(
            user_id=ctx.user_id,
            session_id=ctx.session_id,
            channel=ctx.channel,
            chat_id=ctx.chat_id,
            permissions=ctx.permissions,
            confirm=self._confirm(run),
            role=ctx.role,
            tainted=ctx.tainted,
            idempotency_key=key,
        )
        ctx, refusal = await self._gate.authorize(tool, args, ctx)
        if refusal is not None:
            return refusal
        async with asyncio.timeout(self._tool_timeout_s):
            return await tool.run(args, ctx)

    # -- agents -----------------------------------------------------------------------

    async def run_agent(
        self,
        run: RunInfo,
        node: str,
        prompt: str,
        tools: Sequence[str] | None,
        route: str | None,
        idempotency_key: str,
        *,
        agent: str | None = None,
    ) -> NodeResult:
        stored = await self._store.flow_result(idempotency_key)
        if stored is not None:
            return _result(stored)
        spec = AgentTurn(tools=tools, route=route)
        if agent is not None:
            try:
                found = await asyncio.to_thread(self.load_agent, run.owner, agent)
            except FlowError as exc:
                return NodeResult(False, error=_clip(exc.message))
            spec = AgentTurn(
                persona=found.persona,
                tools=tools if tools is not None else found.tools,
                route=route or found.route,
                budget_tokens=found.budget_tokens,
            )
        ctx = await self.context(run)
        session = SessionRecord(
            ctx.session_id, run.owner, "flow", run.run_id, f"flow {run.flow}", time.time(), 0.0
        )
        metadata: dict[str, Any] = {"flow_run": run.run_id, "node": node}
        started, created = time.perf_counter(), time.time()
        node_result, audit = await self.agent_turn(ctx, session, prompt, spec, metadata)
        seen = tuple(
            dict.fromkeys(
                r.name for r in audit if r.kind == "tool_call" and r.data.get("untrusted")
            )
        )
        if seen:  # untrusted output seen inside the turn taints what reads its reply
            node_result = replace(node_result, untrusted=seen)
        if agent is not None:
            await self._store.save_agent_invocation(
                invocation(
                    idempotency_key,
                    run.owner,
                    agent,
                    f"flow:{run.run_id}:{node}",
                    prompt,
                    node_result,
                    time.perf_counter() - started,
                    created,
                )
            )
        saved = await self._store.save_flow_result(
            idempotency_key, run.run_id, run.owner, _data(node_result)
        )
        return _result(saved)

    async def agent_turn(
        self,
        ctx: ToolContext,
        session: SessionRecord,
        prompt: str,
        spec: AgentTurn,
        metadata: Mapping[str, Any],
    ) -> tuple[NodeResult, Sequence[AuditRecord]]:
        """One orchestrator turn as ``ctx``'s user: the owner's toolset (narrowed to
        ``spec.tools``), model calls through the one budget gate (on ``spec.route``,
        capped at ``spec.budget_tokens``), ``spec.persona`` in the system prompt, and
        ``approvals=None``: a call that needs confirmation is refused. The turn's audit is
        stored; tokens are summed from its ``llm_call`` records."""
        meta = dict(metadata)
        if ctx.tainted:
            meta |= {"untrusted": True, "source": ", ".join(ctx.tainted)}
        event = InboundEvent(
            channel=ctx.channel,
            chat_id=ctx.chat_id,
            sender_id=ctx.user_id,
            message=prompt,
            user_id=ctx.user_id,
            role=ctx.role,
            session_id=session.id,
            metadata=meta,
        )
        toolbox = (
            self._toolbox if spec.tools is None else Allowlisted(self._toolbox, set(spec.tools))
        )
        models = Routed(self._models, spec.route, spec.budget_tokens)
        orchestrator = (
            self._orchestrator(models, toolbox, persona=spec.persona)
            if spec.persona
            else self._orchestrator(models, toolbox)
        )
        result = await orchestrator.run_turn(event, session, [], ctx=ctx, approvals=None)
        await self._store.audit(result.audit)
        tokens_in = tokens_out = 0
        for record in result.audit:
            if record.kind == "llm_call":
                tokens_in += int(record.data.get("tokens_in") or 0)
                tokens_out += int(record.data.get("tokens_out") or 0)
        node_result = NodeResult(
            ok=result.error is None,
            output=result.reply if result.error is None else None,
            error=_clip(result.error) if result.error is not None else None,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            tool_calls=len(result.tool_calls),
        )
        return node_result, result.audit

    def load_agent(self, owner: str, name: str) -> AgentDef:
        if self.folder is None:
            raise FlowError("workspaces are not available")
        return load_agent(self.folder(owner), name)

    # -- approvals and sub-flows ---------------------------------------------------------

    async def ask(self, run: RunInfo, node: str, title: str, detail: str) -> None:
        expires_s = 86400.0
        try:
            spec = (await asyncio.to_thread(self.load_flow, run.owner, run.flow)).nodes.get(node)
            if isinstance(spec, ApprovalNode):
                expires_s = spec.expires_s
        except FlowError:
            pass  # the file changed or went away: the engine's default
        origin = run.origin
        await self._approvals.ask_flow(
            run.owner,
            origin.channel or "web",
            origin.chat_id,
            origin.session or None,
            run.run_id,
            node,
            title,
            detail or f"flow {run.flow}, run {run.run_id}, node {node}",
            expires_s,
        )

    def load_flow(self, owner: str, name: str) -> Flow:
        if self.folder is None:
            raise FlowError("workspaces are not available")
        path = flow_file(self.folder(owner), name)
        if not path.is_file():
            raise FlowNotFound(f"no flow named '{name}' (expected flows/{name}.yaml)")
        return load_flow(path)


def _output(result: ToolResult) -> Any:
    if result.data is not None:
        return json.loads(json.dumps(dict(result.data), default=str))
    text = result.content
    if text[:1] in "{[":
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass
    return text


def _clip(text: str) -> str:
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def _data(result: NodeResult) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "output": result.output,
        "error": result.error,
        "tokens_in": result.tokens_in,
        "tokens_out": result.tokens_out,
        "tool_calls": result.tool_calls,
        "untrusted": list(result.untrusted),
    }


def _result(data: Mapping[str, Any]) -> NodeResult:
    return NodeResult(
        ok=bool(data.get("ok")),
        output=data.get("output"),
        error=data.get("error"),
        tokens_in=int(data.get("tokens_in") or 0),
        tokens_out=int(data.get("tokens_out") or 0),
        tool_calls=int(data.get("tool_calls") or 0),
        untrusted=tuple(str(s) for s in data.get("untrusted") or ()),
    )
