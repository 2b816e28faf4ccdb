"""Panels in conversation: the ``/panels``, ``/panel`` and ``/press`` commands and the
``panel_open`` / ``panel_list`` tools the model uses to open a panel and learn its tools.

Snapshots go out as :class:`~nexflow.bus.events.PanelSnapshotOut`; each connector renders
them (web card, Telegram HTML + inline keyboard, Discord embed + buttons) and sends a
pressed button back as ``/press <action>``.

``/panel new <template> in <workspace>`` puts the new panel into that workspace of the
user (created on first use, within the workspace quotas); without ``in`` it goes to the
default one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nexflow.bus.events import PanelSnapshotOut
from nexflow.panels import PanelError
from nexflow.panels.runtime.errors import PanelRuntimeError
from nexflow.panels.runtime.service import PanelService
from nexflow.panels.runtime.snapshot import parse_action
from nexflow.tools.base import ToolContext, ToolError, ToolResult, ToolSpec

USAGE = "Usage: /panels · /panel new <template> [in <workspace>] · /panel <id> · /panel delete <id>"


class PanelChat:
    def __init__(self, service: PanelService) -> None:
        self._service = service

    def listing(self, user_id: str) -> str:
        """The user's own panels and the templates."""
        lines = []
        instances = self._service.instances(user_id)
        if instances:
            lines.append("Open panels:")
            lines += [
                f"- {p.id}: {p.title} (version {p.version}, workspace {p.workspace})"
                for p in instances
            ]
        else:
            lines.append("No panels are open.")
        templates = ", ".join(t["name"] for t in self._service.templates())
        lines.append(f"Templates: {templates}\n{USAGE}")
        return "\n".join(lines)

    async def command(
        self, args: str, channel: str, chat_id: str, user_id: str
    ) -> str | PanelSnapshotOut:
        """``/panel …``: a text answer, or the snapshot to show."""
        words = args.split()
        try:
            if not words:
                return USAGE
            if words[0] == "new" and (len(words) == 2 or (len(words) == 4 and words[2] == "in")):
                workspace = words[3] if len(words) == 4 else None
                record = await self._service.create(
                    template=words[1], owner=user_id, workspace=workspace
                )
                return await self._service.snapshot(record.id, channel=channel, chat_id=chat_id)
            if words[0] == "delete" and len(words) == 2:
                self._service.owned(words[1], user_id)
                await self._service.delete(words[1])
                return f"Panel {words[1]} deleted."
            if len(words) == 1:
                self._service.owned(words[0], user_id)
                return await self._service.snapshot(words[0], channel=channel, chat_id=chat_id)
        except (PanelRuntimeError, PanelError) as exc:
            return _message(exc)
        return USAGE

    async def press(
        self, action: str, channel: str, chat_id: str, user_id: str, *, event_id: str | None = None
    ) -> str | PanelSnapshotOut:
        try:
            self._service.owned(parse_action(action.strip())[0], user_id)
            _, snapshot = await self._service.press(
                action.strip(),
                channel=channel,
                chat_id=chat_id,
                user_id=user_id,
                event_id=event_id,
            )
        except (PanelRuntimeError, PanelError) as exc:
            return _message(exc)
        return snapshot


def _message(exc: Exception) -> str:
    text = getattr(exc, "message", None) or str(exc)
    hint = getattr(exc, "hint", "")  # a workspace refusal (a quota) says what to do
    return f"Panel error: {text}" + (f" ({hint})" if hint else "")


class PanelOpenTool:
    """Lets the model open a panel from a template (or reuse the open one) and see its tools;
    with ``workspace``, in that workspace of the user (reusing only a panel there)."""

    spec = ToolSpec(
        name="panel_open",
        deferred=True,
        description=(
            "Open a panel from a template (e.g. server-monitor, todo, notes, flowchart, "
            "dashboard) or return it if open; answers with its state and tool names. "
            "Give 'workspace' only when the user names one: the panel then lives there."
        ),
        parameters={
            "type": "object",
            "properties": {
                "template": {"type": "string"},
                "workspace": {
                    "type": "string",
                    "description": "A workspace of the user (default: their default one)",
                },
            },
            "required": ["template"],
        },
        effects=frozenset({"write"}),  # creates a panel the user keeps
    )

    def __init__(self, service: PanelService) -> None:
        self._service = service

    async def run(self, args: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        template = str(args.get("template") or "")
        workspace = str(args.get("workspace") or "") or None
        existing = [p for p in self._service.instances(ctx.user_id) if p.template == template]
        if workspace is not None:
            existing = [p for p in existing if p.workspace == workspace]
        try:
            record = (
                existing[0]
                if existing
                else await self._service.create(
                    template=template, owner=ctx.user_id, workspace=workspace
                )
            )
        except (PanelRuntimeError, PanelError) as exc:
            raise ToolError(_message(exc)) from exc
        tools = [t.spec.name for t in self._service.tools_of(record.id)]
        return ToolResult(
            f"Panel {record.id} ({record.title}) is open at version {record.version} "
            f"in workspace {record.workspace}. "
            f"State: {record.state}. Its tools: {', '.join(tools) or 'none'}.",
            data={"id": record.id, "workspace": record.workspace, "tools": tools},
            loads=tuple(tools),
        )


class PanelListTool:
    spec = ToolSpec(
        name="panel_list",
        deferred=True,
        description="List the user's open panels and the templates that can be opened.",
    )

    def __init__(self, service: PanelService) -> None:
        self._chat = PanelChat(service)

    async def run(self, args: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        return ToolResult(self._chat.listing(ctx.user_id))
