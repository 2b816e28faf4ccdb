"""Panel tools as LLM tools: one :class:`PanelTool` per Logic tool of an instance.

Names. A panel tool is ``user:workspace:panel:tool`` (the instance's owner, its
workspace, the instance id, the Logic tool name). The workspace part is the
``panels.workspace`` setting (default ``main``) for a panel in the owner's default
workspace, so those names stay what they were before panels could live elsewhere, and
the workspace's name for any other (``u1:research:todo:add_item``). Providers
only accept ``^[a-zA-Z0-9_-]{1,64}$``, so the name the model sees is
:func:`provider_name` of it: each ``:`` becomes ``__``, any other character
outside ``[A-Za-z0-9_-]`` becomes ``_``, a user part that is a generated user id
(32 hex digits) is shortened to its first 8, and a name longer than 64 characters is
cut to 55 and suffixed ``_`` + the first 8 hex digits of the SHA-256 of the
qualified name. Example: ``owner:main:server-monitor:filter_logs`` →
``owner__main__server-monitor__filter_logs``; for user ``3f2a9c1b…`` (32 hex digits)
it is ``3f2a9c1b__main__server-monitor__filter_logs``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, Protocol

from nexflow.panels.ast import NexusPanel, Tool
from nexflow.panels.runtime.errors import PanelRuntimeError
from nexflow.panels.runtime.state import args_schema
from nexflow.panels.runtime.versions import CallOutcome, TriggeredBy
from nexflow.tools.base import ToolContext, ToolError, ToolResult, ToolSpec, UnknownTool

MAX_NAME = 64
_BAD = re.compile(r"[^A-Za-z0-9_-]")
_USER_ID = re.compile(r"[0-9a-f]{32}")


def qualified_name(user: str, workspace: str, panel_id: str, tool: str) -> str:
    return f"{user}:{workspace}:{panel_id}:{tool}"


def provider_name(qualified: str) -> str:
    """The provider-safe form of a ``user:workspace:panel:tool`` name (see module doc)."""
    parts = qualified.split(":")
    if parts and _USER_ID.fullmatch(parts[0]):
        parts[0] = parts[0][:8]  # long enough to tell a box's users apart, short for the model
    name = "__".join(_BAD.sub("_", part) for part in parts)
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(qualified.encode()).hexdigest()[:8]
    return f"{name[:55]}_{digest}"


class PanelCaller(Protocol):
    async def call_tool(
        self,
        panel_id: str,
        tool: str,
        args: Mapping[str, Any],
        *,
        triggered_by: TriggeredBy = "user",
        user_id: str | None = None,
        event_id: str | None = None,
    ) -> CallOutcome: ...


class PanelTool:
    """Adapter from a panel's Logic tool to the gateway's :class:`~nexflow.tools.Tool`.

    It runs only for the panel's owner: a forged name that reaches it from another
    user's turn is refused as unknown (the toolset of that turn never offered it)."""

    def __init__(
        self,
        spec: ToolSpec,
        qualified: str,
        panel_id: str,
        tool: str,
        caller: PanelCaller,
        owner: str,
    ) -> None:
        self.spec = spec
        self.qualified = qualified
        self.panel_id = panel_id
        self.tool = tool
        self.owner = owner
        self._caller = caller

    async def run(self, args: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        if ctx.user_id != self.owner:
            raise UnknownTool(f"no tool named {self.spec.name!r}")
        if self.spec.dangerous:
            if ctx.confirm is None:
                raise ToolError(
                    f"{self.qualified} is marked dangerous and this channel cannot ask the "
                    "user to confirm; ask the user to press it on the panel instead"
                )
            if not await ctx.confirm(f"Run {self.qualified}?", json.dumps(dict(args))):
                raise ToolError("the user did not approve running this panel tool")
        try:
            outcome = await self._caller.call_tool(
                self.panel_id,
                self.tool,
                args,
                triggered_by="ai",
                user_id=ctx.user_id or None,
                event_id=ctx.idempotency_key,  # a flow step's key: its run_flow starts once
            )
        except PanelRuntimeError as exc:
            raise ToolError(exc.message) from exc
        body = json.dumps(outcome.to_json(), ensure_ascii=False, default=str)
        if not outcome.ok:
            return ToolResult(
                f"error: {outcome.error}\n{body}", is_error=True, data=outcome.to_json()
            )
        return ToolResult(body, data=outcome.to_json())


def build_tools(
    panel_id: str, owner: str, workspace: str, panel: NexusPanel, caller: PanelCaller
) -> list[PanelTool]:
    return [_tool(panel_id, owner, workspace, panel, t, caller) for t in panel.logic.tools]


def _tool(
    panel_id: str, owner: str, workspace: str, panel: NexusPanel, tool: Tool, caller: PanelCaller
) -> PanelTool:
    qualified = qualified_name(owner, workspace, panel_id, tool.name)
    reaches_net = any(cap.kind == "http" for cap in panel.capabilities)
    what = tool.description or f"Runs {tool.name}"
    spec = ToolSpec(
        name=provider_name(qualified),
        deferred=True,
        description=f"{what} (panel {panel.title!r}, instance {panel_id}; {qualified})",
        parameters=args_schema(tool),
        dangerous=tool.dangerous,
        # A panel tool changes the panel's state; one whose panel declares an http
        # capability may also fetch from and send to the net (granted or not yet).
        effects=frozenset({"write", "egress"}) if reaches_net else frozenset({"write"}),
        untrusted_output=reaches_net,
    )
    return PanelTool(spec, qualified, panel_id, tool.name, caller, owner)
