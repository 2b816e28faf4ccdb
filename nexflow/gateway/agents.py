"""``AgentService``: named agents invoked on their own (``docs/flows.md``, "Agents").

Agents are ``agents/<name>.yaml`` in the caller's default workspace
(:mod:`nexflow.flows.agents`). :meth:`AgentService.invoke` runs one agent turn exactly as
a flow's agent node does (:meth:`GatewayFlowHost.agent_turn`: the owner's toolset
narrowed to the allowlist, the one budget gate with the agent's route and token cap, no
approvals — a call that needs confirmation is refused) and records it in
``agent_invocations``. Exceptions are the flows library's: :class:`AgentNotFound` (no
such agent for this user, or someone else's), :class:`~nexflow.flows.FlowInvalid` (the
file does not validate: ``issues`` as ``file:line:col: message``),
:class:`~nexflow.flows.EngineUnavailable` (no workspaces).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from nexflow.flows.agents import (
    AGENT_DIR,
    AgentDef,
    AgentNotFound,
    agent_file,
    load_agent,
    load_agent_text,
)
from nexflow.flows.errors import EngineUnavailable, FlowInvalid, FlowIssue
from nexflow.gateway.agent_turn import AgentTurn, invocation
from nexflow.gateway.flow_host import GatewayFlowHost
from nexflow.storage.base import SessionRecord
from nexflow.storage.repo_agents import AgentInvocation
from nexflow.workspace.api import WorkspaceError
from nexflow.workspace.lazy import LazyWorkspaces


class InvocationStorage(Protocol):
    async def save_agent_invocation(self, record: AgentInvocation) -> None: ...
    async def agent_invocations(
        self, user_id: str, agent: str, limit: int = 100
    ) -> list[AgentInvocation]: ...


@dataclass(frozen=True)
class AgentSummary:
    """An agent file of a user's; ``errors`` are ``file:line:col: message``."""

    name: str
    description: str
    path: str
    valid: bool
    errors: tuple[str, ...]
    route: str | None = None
    tools: tuple[str, ...] | None = None
    budget_tokens: int | None = None


class AgentService:
    """Named agents of the gateway's users; see the module docstring."""

    def __init__(
        self, host: GatewayFlowHost, workspaces: LazyWorkspaces, store: InvocationStorage
    ) -> None:
        self._host = host
        self._workspaces = workspaces
        self._store = store

    async def _folder(self, user_id: str) -> Path:
        try:
            service = await self._workspaces.service()
        except WorkspaceError as exc:
            raise EngineUnavailable(f"agents need the workspaces: {exc.message}") from exc
        self._host.folder = service.workspace_path
        return service.workspace_path(user_id)

    async def list_agents(self, user_id: str) -> list[AgentSummary]:
        return await asyncio.to_thread(_list, await self._folder(user_id))

    async def load(self, user_id: str, name: str) -> AgentDef:
        return await asyncio.to_thread(load_agent, await self._folder(user_id), name)

    async def invoke(self, user_id: str, name: str, text: str) -> AgentInvocation:
        """One turn of the user's agent ``name`` on ``text``, recorded (also when it fails)."""
        agent = await self.load(user_id, name)
        inv_id = uuid.uuid4().hex
        session_id = f"agent:{inv_id}"
        ctx = await self._host.owner_context(user_id, session_id, "agent", inv_id)
        now = time.time()
        session = SessionRecord(session_id, user_id, "agent", inv_id, f"agent {name}", now, 0.0)
        spec = AgentTurn(agent.persona, agent.tools, agent.route, agent.budget_tokens)
        started = time.perf_counter()
        result, _ = await self._host.agent_turn(ctx, session, text, spec, {"agent": name})
        record = invocation(
            inv_id, user_id, name, "api", text, result, time.perf_counter() - started, now
        )
        await self._store.save_agent_invocation(record)
        return record

    async def invocations(self, user_id: str, name: str, limit: int = 100) -> list[AgentInvocation]:
        """The user's invocations of their agent ``name``; :class:`AgentNotFound` when
        they have no such agent file."""
        folder = await self._folder(user_id)
        if not await asyncio.to_thread(agent_file(folder, name).is_file):
            raise AgentNotFound(f"no agent named '{name}' (expected {AGENT_DIR}/{name}.yaml)")
        return await self._store.agent_invocations(user_id, name, limit)


def _list(folder: Path) -> list[AgentSummary]:
    out: list[AgentSummary] = []
    for path in sorted((folder / AGENT_DIR).glob("*.yaml")):
        rel = f"{AGENT_DIR}/{path.name}"
        try:
            agent = load_agent_text(path.read_text(encoding="utf-8"), rel)
            if agent.name != path.stem:
                message = f"name: '{agent.name}' must match the file name '{path.stem}'"
                raise FlowInvalid([FlowIssue(rel, 1, 1, message)])
        except FlowInvalid as exc:
            out.append(AgentSummary(path.stem, "", rel, False, tuple(map(str, exc.issues))))
        except (OSError, UnicodeDecodeError):
            out.append(AgentSummary(path.stem, "", rel, False, (f"{rel}:0:0: unreadable",)))
        else:
            out.append(
                AgentSummary(
                    agent.name,
                    agent.description,
                    rel,
                    True,
                    (),
                    agent.route,
                    agent.tools,
                    agent.budget_tokens,
                )
            )
    return out
