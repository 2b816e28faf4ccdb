"""``GET /api/v1/tools``: the caller's tool registry, with usage from the audit log.

The registry is what the caller can use now: the toolset a turn of theirs is built from
(:meth:`~nexflow.tools.toolset.Toolbox.tools_for`: the built-ins, their panels' tools,
``mcp_tools``/``mcp_call``), each tool of their MCP servers once the server has listed
it (``<server>__<tool>``, callable by name), and every runnable skill their permissions
let them run (``run_skill``). ``load_tools`` is not a tool (it only shows schemas).

Effects come from the one place that decides them (:func:`nexflow.trust.effects_of`):
a tool's declared worst case, a skill's effects for a call with no input. Usage counts
the caller's ``tool_call`` audit rows (a skill: its ``skill_run`` rows); the owner's
``?all=true`` counts everyone's, for the owner's registry.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from nexflow.panels.runtime.tools import PanelTool
from nexflow.skills.permissions import required_permissions
from nexflow.storage.stats import CallKind, ToolUsage
from nexflow.tools.base import Tool, ToolContext, UnknownTool
from nexflow.tools.disclosure import summary
from nexflow.tools.toolset import Toolbox, Toolset
from nexflow.trust import effects_of
from nexflow.trust.effects import Effects
from nexflow.web.app import WebServices, error_body
from nexflow.web.identity import caller_of, web_user
from nexflow.web.models_common import INVALID_REQUEST, error

if TYPE_CHECKING:
    from nexflow.mcp_client import McpServers

router = APIRouter()

Source = Literal["builtin", "skill", "panel", "mcp"]
EffectName = Literal["write", "egress", "untrusted"]
DESCRIPTION_CHARS = 200
# The category of a built-in is the domain package it comes from.
_CATEGORIES = (
    ("nexflow.tools.", "general"),
    ("nexflow.gateway.file_tools", "files"),
    ("nexflow.gateway.workspace_tools", "workspace"),
    ("nexflow.workspace.", "workspace"),
    ("nexflow.skills.", "skills"),
    ("nexflow.panels.", "panels"),
    ("nexflow.tasks.", "reminders"),
    ("nexflow.memory.", "memory"),
    ("nexflow.mcp_client.", "mcp"),
)


class ToolEntry(BaseModel):
    """One tool of the caller's registry."""

    name: str = Field(description="The name the model calls it by (a skill: its skill name)")
    source: Source
    category: str = Field(description="Built-ins: their domain; skills: SKILL.md's category")
    description: str = Field(description="The first sentence of its description")
    deferred: bool = Field(description="Offered by name only until loaded (no schema sent)")
    effects: list[EffectName] = Field(description="Empty: it only reads")
    usage: int = Field(description="Calls recorded in the audit log")
    last_used: float | None = Field(description="Epoch seconds of the last call")
    failures: int
    failure_rate: float = Field(description="failures / usage, 0 when unused")


class ToolRegistryResponse(BaseModel):
    scope: Literal["mine", "all"] = Field(description="Whose calls the usage counts")
    tools: list[ToolEntry]


@dataclass(frozen=True, slots=True)
class _Listed:
    name: str
    source: Source
    category: str
    description: str
    deferred: bool
    effects: Effects
    kind: CallKind = "tool_call"  # the audit rows that count its use


@router.get(
    "/api/v1/tools",
    response_model=ToolRegistryResponse,
    responses={
        403: error("?all=true from a caller who is not the owner"),
        404: error("The tool registry is not enabled"),
        422: INVALID_REQUEST,
    },
)
async def list_tools(request: Request, all: bool = False) -> ToolRegistryResponse | JSONResponse:
    """Every tool the caller can use, with usage, last use and failure rate; the owner
    adds ``?all=true`` to count everyone's calls."""
    svc: WebServices = request.app.state.services
    caller = caller_of(request)
    if all and caller.role != "owner":
        return JSONResponse(error_body("forbidden", "Only the owner sees everyone's."), 403)
    if svc.tools is None:
        return JSONResponse(error_body("not_available", "The tool registry is not enabled."), 404)
    user_id = await web_user(request)
    ctx = ToolContext(
        user_id=user_id,
        session_id="",
        channel="web",
        chat_id="",
        permissions=svc.permissions.granted(caller.role, user_id),
        role=caller.role,
    )
    usage = {(u.kind, u.name): u for u in await svc.storage.tool_usage(None if all else user_id)}
    return ToolRegistryResponse(
        scope="all" if all else "mine",
        tools=[_entry(t, usage.get((t.kind, t.name))) for t in _registry(svc, svc.tools, ctx)],
    )


def _registry(svc: WebServices, toolbox: Toolbox, ctx: ToolContext) -> Iterator[_Listed]:
    toolset = toolbox.tools_for(ctx)
    for tool in toolset:
        yield _tool(tool, toolbox, listed=True)
    if svc.mcp_servers is not None:
        yield from _mcp_listed(svc.mcp_servers, toolset, toolbox, ctx)
    run_skill = svc.skills.run_tool
    for skill in svc.skills.registry.list(available_only=True):
        if not skill.runnable or not required_permissions(skill) <= ctx.permissions:
            continue
        yield _Listed(
            skill.name,
            "skill",
            skill.category or "uncategorized",
            summary(skill.description, DESCRIPTION_CHARS),
            True,  # named in the skills index; its instructions come from read_skill
            effects_of(run_skill, {"name": skill.name, "input": {}}),
            "skill_run",
        )


def _mcp_listed(
    servers: McpServers, toolset: Toolset, toolbox: Toolbox, ctx: ToolContext
) -> Iterator[_Listed]:
    """The tools of the caller's MCP servers that have listed them (callable by name,
    never offered with a schema)."""
    for handle in servers.allowed(ctx):
        for info in handle.known_tools or ():
            try:
                tool = toolset.get(info.model_name)
            except UnknownTool:
                continue
            yield _tool(tool, toolbox, listed=False)


def _tool(tool: Tool, toolbox: Toolbox, *, listed: bool) -> _Listed:
    spec = tool.spec
    module = type(tool).__module__
    source: Source = "builtin"
    if isinstance(tool, PanelTool):
        source = "panel"
    elif module.startswith("nexflow.mcp_client.") and spec.name not in toolbox.builtins:
        source = "mcp"
    return _Listed(
        spec.name,
        source,
        _category(module),
        summary(spec.description, DESCRIPTION_CHARS),
        spec.deferred or not listed,
        effects_of(tool, {}),
    )


def _category(module: str) -> str:
    for prefix, category in _CATEGORIES:
        if module.startswith(prefix):
            return category
    parts = module.split(".")
    return parts[1] if parts[0] == "nexflow" and len(parts) > 1 else "other"


def _entry(listed: _Listed, usage: ToolUsage | None) -> ToolEntry:
    effects: list[EffectName] = list(listed.effects.kinds)
    if listed.effects.untrusted_output:
        effects.append("untrusted")
    return ToolEntry(
        name=listed.name,
        source=listed.source,
        category=listed.category,
        description=listed.description,
        deferred=listed.deferred,
        effects=effects,
        usage=usage.calls if usage else 0,
        last_used=usage.last_used if usage else None,
        failures=usage.failures if usage else 0,
        failure_rate=usage.failure_rate if usage else 0.0,
    )
