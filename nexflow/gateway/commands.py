"""Slash commands handled without the model: ``/start``, ``/help``, ``/skills``, ``/run``,
``/status``, ``/new``, ``/link`` (issue a code), ``/lang``, the panel commands, the
workspace commands (:mod:`nexflow.gateway.commands_workspace`) and the flow and task
commands (:mod:`nexflow.gateway.commands_flows`). They go through the inbox like
any message, so they are durable and ordered. Replies are in the user's language
(``event.metadata["lang"]``, set by the identity middleware; see :mod:`nexflow.i18n`).
``/link <code>`` never reaches here: the identity middleware redeems it."""

from __future__ import annotations

import json
import shlex
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from nexflow import i18n
from nexflow.bus.events import InboundEvent, Outbound
from nexflow.gateway import patch_review
from nexflow.panels.runtime.chat import PanelChat
from nexflow.skills import SkillNotFound, SkillRegistry, render_index
from nexflow.skills.explain import explain
from nexflow.storage.base import SessionRecord
from nexflow.tools.base import ToolContext
from nexflow.tools.registry import ToolRegistry

if TYPE_CHECKING:
    from nexflow.gateway.commands_workspace import WorkspaceCommands
    from nexflow.gateway.flows import FlowService
    from nexflow.skills.install.chat import ChatInstall

LINK_TTL_S = 600.0
FLOW_COMMANDS = frozenset({"flows", "flow", "tasks", "task"})  # commands_flows
TASK_ACTION = "task:"  # a task card's button: task:<run id>:<action>


class UserSettings(Protocol):
    async def user_lang(self, user_id: str) -> str | None: ...
    async def issue_link_code(self, user_id: str, ttl_s: float) -> str: ...
    async def set_user_lang(self, user_id: str, lang: str) -> None: ...


@dataclass(frozen=True, slots=True)
class CommandResult:
    """``reply`` is stored in the history; ``outbound`` (a panel snapshot, a patch review)
    replaces the plain text reply on the channel when set."""

    reply: str
    new_session: bool = False
    outbound: Outbound | None = None


StatusFn = Callable[[str, str], Awaitable[str]]  # (language, user id) → the /status text
PagedFn = Callable[[str, str], Awaitable[str]]  # (language, session id) → the /paged text


class CommandRouter:
    def __init__(
        self,
        skills: SkillRegistry,
        tools: ToolRegistry,
        status: StatusFn,
        panels: PanelChat | None = None,
        users: UserSettings | None = None,
        on_user_change: Callable[[str], None] | None = None,
        workspaces: WorkspaceCommands | None = None,
        paged: PagedFn | None = None,
        skill_installs: ChatInstall | None = None,
        flows: FlowService | None = None,
    ) -> None:
        self._skills = skills
        self._tools = tools
        self._status = status
        self._panels = panels
        self._users = users
        self._on_user_change = on_user_change  # drops the identity cache after /lang
        self._workspaces = workspaces
        self._paged = paged  # context paging (nexflow/memory/paging.py)
        self._skill_installs = skill_installs  # /skill install (owner, confirmation card)
        self._flows = flows  # /flows, /flow run, /tasks, /task (commands_flows)

    @staticmethod
    def is_command(text: str) -> bool:
        return text.startswith("/") and len(text) > 1 and text[1].isalpha()

    async def handle(  # noqa: PLR0912 (one case per command)
        self, event: InboundEvent, session: SessionRecord, ctx: ToolContext
    ) -> CommandResult:
        name, _, rest = event.message.strip()[1:].partition(" ")
        name = name.split("@", 1)[0].lower()  # /run@nexflow_bot in groups
        lang = await self._language(event, ctx)
        match name:
            case "help":
                return CommandResult(self._help(lang))
            case "start":
                return CommandResult(f"{i18n.t(lang, 'start')}\n\n{i18n.t(lang, 'help')}")
            case "skills":
                return CommandResult(self._list_skills(lang))
            case "run":
                return CommandResult(await self._run(rest.strip(), ctx, lang))
            case "skill" if self._skill_installs is not None:
                return CommandResult(await self._skill_installs.handle(rest, ctx))
            case "status":
                return CommandResult(await self._status(lang, ctx.user_id))
            case "paged" if self._paged is not None:
                return CommandResult(await self._paged(lang, session.id))
            case "new":
                return CommandResult(i18n.t(lang, "new"), new_session=True)
            case "link" if self._users is not None:
                return CommandResult(await self._link(rest.strip(), ctx, lang))
            case "lang" if self._users is not None:
                return CommandResult(await self._lang(rest.strip().lower(), ctx, lang))
            case _ if name in FLOW_COMMANDS:
                return await self._flow(name, rest, event, session, ctx, lang)
            case "press" if rest.strip().startswith(TASK_ACTION):
                return await self._flow(name, rest, event, session, ctx, lang)
            case "press" if rest.strip().startswith(patch_review.SYNC_ACTION):
                sync = rest.strip().removeprefix(patch_review.SYNC_ACTION)
                return await self._workspace("sync", sync, event, session, ctx, lang)
            case "panels" | "panel" | "press" if self._panels is not None:
                return await self._panel(name, rest.strip(), event, ctx, lang)
            case _ if name in patch_review.COMMANDS:
                return await self._workspace(name, rest.strip(), event, session, ctx, lang)
            case _:
                return CommandResult(i18n.t(lang, "unknown_command", name=name))

    def _help(self, lang: str) -> str:
        more = f"\n{i18n.t(lang, 'help_workspaces')}" if self._workspaces is not None else ""
        flows = f"\n{i18n.t(lang, 'help_flows')}" if self._flows is not None else ""
        return i18n.t(lang, "help") + more + flows

    async def _flow(
        self,
        name: str,
        rest: str,
        event: InboundEvent,
        session: SessionRecord,
        ctx: ToolContext,
        lang: str,
    ) -> CommandResult:
        if self._flows is None:
            return CommandResult(i18n.t(lang, "flows_disabled"))
        from nexflow.gateway import commands_flows  # it imports CommandResult from here

        where = commands_flows.Where(ctx.user_id, event.channel, event.chat_id, session.id, lang)
        return await commands_flows.FlowCommands(self._flows).handle(name, rest.strip(), where)

    async def _workspace(
        self,
        name: str,
        rest: str,
        event: InboundEvent,
        session: SessionRecord,
        ctx: ToolContext,
        lang: str,
    ) -> CommandResult:
        if self._workspaces is None:
            return CommandResult(i18n.t(lang, "ws_disabled"))
        return await self._workspaces.handle(
            name, rest, ctx.user_id, event.channel, event.chat_id, session.id, lang
        )

    async def _language(self, event: InboundEvent, ctx: ToolContext) -> str:
        # Read now, not at publish: a /lang queued just before this command has run by now.
        stored = await self._users.user_lang(ctx.user_id) if self._users is not None else None
        return i18n.pick(stored or event.metadata.get("lang"), event.metadata.get("language"))

    async def _link(self, rest: str, ctx: ToolContext, lang: str) -> str:
        assert self._users is not None
        if rest:  # a well-formed /link <code> was redeemed before the inbox
            return i18n.t(lang, "link_bad")
        code = await self._users.issue_link_code(ctx.user_id, LINK_TTL_S)
        return i18n.t(lang, "link_code", code=code, minutes=round(LINK_TTL_S / 60))

    async def _lang(self, rest: str, ctx: ToolContext, lang: str) -> str:
        assert self._users is not None
        chosen = i18n.normalize(rest)
        if chosen is None:
            return i18n.t(lang, "lang_usage", lang=lang)
        await self._users.set_user_lang(ctx.user_id, chosen)
        if self._on_user_change is not None:
            self._on_user_change(ctx.user_id)
        return i18n.t(chosen, "lang_set")

    async def _panel(
        self, name: str, rest: str, event: InboundEvent, ctx: ToolContext, lang: str
    ) -> CommandResult:
        assert self._panels is not None
        if name == "panels":
            return CommandResult(self._panels.listing(ctx.user_id))
        where = (event.channel, event.chat_id, ctx.user_id)
        answer = await (
            self._panels.press(rest, *where, event_id=event.dedup_key)  # one run per press
            if name == "press"
            else self._panels.command(rest, *where)
        )
        if isinstance(answer, str):
            return CommandResult(answer)
        if self._workspaces is not None:
            answer = patch_review.with_sync_button(answer, lang)
        return CommandResult(f"[panel {answer.panel_id}] {answer.title}", outbound=answer)

    def _list_skills(self, lang: str) -> str:
        skills = self._skills.list()
        if not skills:
            return i18n.t(lang, "skills_none")
        ready = [s for s in skills if s.available]
        lines = [render_index(ready, char_budget=3_500) or i18n.t(lang, "skills_none_available")]
        unavailable = [s for s in skills if not s.available]
        if unavailable:
            lines.append("\n" + i18n.t(lang, "skills_unavailable", count=len(unavailable)))
            lines += [f"- {s.name}: {s.reason}" for s in unavailable[:20]]
        return "\n".join(lines)

    async def _run(self, rest: str, ctx: ToolContext, lang: str) -> str:
        name, _, raw = rest.partition(" ")
        if not name:
            return i18n.t(lang, "run_usage")
        try:
            skill = self._skills.get(name)
            payload = _parse_input(raw.strip(), skill.input_schema)
        except SkillNotFound as exc:
            return exc.message
        except ValueError as exc:
            return i18n.t(lang, "run_bad_input", name=name, error=exc)
        if skill.available and not skill.runnable:
            return explain(skill)  # instructions-only: say what it is for, not an error
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
