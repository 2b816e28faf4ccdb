"""Slash commands handled without the model: ``/help``, ``/skills``, ``/run``, ``/status``,
``/new``. They go through the inbox like any message, so they are durable and ordered."""

from __future__ import annotations

import json
import shlex
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nexflow.bus.events import InboundEvent, PanelSnapshotOut
from nexflow.panels.runtime.chat import PanelChat
from nexflow.skills import SkillNotFound, SkillRegistry, render_index
from nexflow.storage.base import SessionRecord
from nexflow.tools.base import ToolContext
from nexflow.tools.registry import ToolRegistry

HELP = """Commands:
/help — this list
/skills — the skills this Nexflow has
/run <skill> [json | key=value …] — run a skill directly, without the model
/status — version, model, queue
/new — start a fresh conversation
/panels — open panels and templates; /panel new <template>, /panel <id>
/confirm <id>, /cancel <id> — answer a confirmation request"""


@dataclass(frozen=True, slots=True)
class CommandResult:
    """``reply`` is stored in the history; ``outbound`` (a panel snapshot) replaces the plain
    text reply on the channel when set."""

    reply: str
    new_session: bool = False
    outbound: PanelSnapshotOut | None = None


StatusFn = Callable[[], Awaitable[str]]


class CommandRouter:
    def __init__(
        self,
        skills: SkillRegistry,
        tools: ToolRegistry,
        status: StatusFn,
        panels: PanelChat | None = None,
    ) -> None:
        self._skills = skills
        self._tools = tools
        self._status = status
        self._panels = panels

    @staticmethod
    def is_command(text: str) -> bool:
        return text.startswith("/") and len(text) > 1 and text[1].isalpha()

    async def handle(
        self, event: InboundEvent, session: SessionRecord, ctx: ToolContext
    ) -> CommandResult:
        name, _, rest = event.message.strip()[1:].partition(" ")
        name = name.split("@", 1)[0].lower()  # /run@nexflow_bot in groups
        match name:
            case "help" | "start":
                return CommandResult(HELP)
            case "skills":
                return CommandResult(self._list_skills())
            case "run":
                return CommandResult(await self._run(rest.strip(), ctx))
            case "status":
                return CommandResult(await self._status())
            case "new":
                return CommandResult("Started a new conversation.", new_session=True)
            case "panels" | "panel" | "press" if self._panels is not None:
                return await self._panel(name, rest.strip(), event, ctx)
            case _:
                return CommandResult(f"Unknown command /{name}. /help lists the commands.")

    async def _panel(
        self, name: str, rest: str, event: InboundEvent, ctx: ToolContext
    ) -> CommandResult:
        assert self._panels is not None
        if name == "panels":
            return CommandResult(self._panels.listing())
        where = (event.channel, event.chat_id, ctx.user_id)
        answer = await (
            self._panels.press(rest, *where)
            if name == "press"
            else self._panels.command(rest, *where)
        )
        if isinstance(answer, str):
            return CommandResult(answer)
        return CommandResult(f"[panel {answer.panel_id}] {answer.title}", outbound=answer)

    def _list_skills(self) -> str:
        skills = self._skills.list()
        if not skills:
            return "No skills are installed."
        ready = [s for s in skills if s.available]
        lines = [render_index(ready, char_budget=3_500) or "(none available)"]
        unavailable = [s for s in skills if not s.available]
        if unavailable:
            lines.append(f"\nUnavailable ({len(unavailable)}):")
            lines += [f"- {s.name}: {s.reason}" for s in unavailable[:20]]
        return "\n".join(lines)

    async def _run(self, rest: str, ctx: ToolContext) -> str:
        name, _, raw = rest.partition(" ")
        if not name:
            return "Usage: /run <skill> [json | key=value …]"
        try:
            skill = self._skills.get(name)
            payload = _parse_input(raw.strip(), skill.input_schema)
        except SkillNotFound as exc:
            return exc.message
        except ValueError as exc:
            return f"Could not read the input for {name}: {exc}"
        result = await self._tools.get("run_skill").run({"name": name, "input": payload}, ctx)
        return result.content


def _parse_input(raw: str, schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{json}``, ``key=value …``, or plain text for a skill with one required field."""
    if not raw:
        return {}
    if raw.startswith("{"):
        value = json.loads(raw)
        if not isinstance(value, dict):
            raise ValueError("the JSON input must be an object")
        return value
    try:
        pairs = shlex.split(raw)
    except ValueError:
        pairs = []
    if pairs and all("=" in p and p.split("=", 1)[0].isidentifier() for p in pairs):
        return dict(p.split("=", 1) for p in pairs)
    required = list((schema or {}).get("required") or [])
    if len(required) == 1:
        return {required[0]: raw}
    raise ValueError("give JSON ({...}) or key=value pairs")
