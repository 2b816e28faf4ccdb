"""Flow and task chat commands: ``/flows``, ``/flow run <name> [args]``, ``/tasks``,
``/task <id> [pause|resume|stop|retry]``.

They call :class:`~nexflow.gateway.flows.FlowService` as the sender's user; a run
started here has the chat as its origin (approval cards come back to it). ``/task <id>``
answers with a card (a :class:`~nexflow.bus.events.PanelSnapshotOut`, the one outbound
kind with free buttons that every channel renders): the run's stages and the buttons
that fit its state. A button's action is ``task:<run id>:<action>``; a press arrives as
``/press task:<id>:<action>`` and runs like ``/task <id> <action>``. A task id may be
shortened to a unique prefix of at least :data:`MIN_PREFIX` characters (``/tasks``
shows :data:`SHORT_ID`). Every message of the flows library is user-safe
(``FlowError.message``), so refusals quote it.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any, Literal, get_args

from nexflow import i18n
from nexflow.bus.events import ButtonSpec, PanelSnapshotOut
from nexflow.flows.errors import EngineUnavailable, FlowError, FlowInvalid, RunNotFound
from nexflow.flows.host import Origin
from nexflow.flows.status import NodeStatus, RunStatus
from nexflow.gateway.commands import FLOW_COMMANDS, TASK_ACTION, CommandResult

if TYPE_CHECKING:
    from nexflow.gateway.flows import FlowService

COMMANDS = FLOW_COMMANDS
Action = Literal["pause", "resume", "stop", "retry"]
ACTIONS: tuple[Action, ...] = get_args(Action)
SHORT_ID = 8
MIN_PREFIX = 4
TASKS_SHOWN = 10
MAX_LINE = 160
# Which buttons a card shows for a run in each state.
_BUTTONS: dict[str, tuple[Action, ...]] = {
    "queued": ("pause", "stop"),
    "running": ("pause", "stop"),
    "waiting": ("pause", "stop"),
    "paused": ("resume", "stop"),
    "failed": ("retry",),
}
_ICONS = {
    "pending": "·",
    "queued": "·",
    "running": "▶",
    "waiting": "⏳",
    "paused": "⏸",
    "completed": "✓",
    "failed": "✗",
    "skipped": "–",
    "cancelled": "⏹",
}


@dataclass(frozen=True, slots=True)
class Where:
    """Who asked, and where the answer (and the run's cards) go."""

    user_id: str
    channel: str
    chat_id: str
    session_id: str | None
    lang: str


def task_action(run_id: str, action: Action) -> str:
    return f"{TASK_ACTION}{run_id}:{action}"


class FlowCommands:
    def __init__(self, flows: FlowService) -> None:
        self._flows = flows

    async def handle(self, name: str, rest: str, where: Where) -> CommandResult:
        """Run ``/<name> <rest>`` (``name`` in :data:`COMMANDS`, or ``press`` with a
        ``task:`` action)."""
        try:
            match name, rest.split(maxsplit=1):
                case "flows", []:
                    return CommandResult(await self._list(where))
                case "flow", ["run", args]:
                    return CommandResult(await self._start(args, where))
                case "tasks", []:
                    return CommandResult(await self._tasks(where))
                case "task", [ident]:
                    return await self._card(await self._resolve(ident, where), where)
                case "task", [ident, action] if action in ACTIONS:
                    return await self._control(ident, action, where)
                case "press", [action] if action.startswith(TASK_ACTION):
                    run_id, _, verb = action.removeprefix(TASK_ACTION).rpartition(":")
                    if run_id and verb in ACTIONS:
                        return await self._control(run_id, verb, where)
        except EngineUnavailable as exc:
            return CommandResult(i18n.t(where.lang, "flows_unavailable", error=exc.message))
        except _Unknown as exc:
            return CommandResult(i18n.t(where.lang, exc.key, id=exc.ident))
        usage = {"flows": "flow_usage", "flow": "flow_usage", "tasks": "task_usage"}
        return CommandResult(i18n.t(where.lang, usage.get(name, "task_usage")))

    async def _list(self, where: Where) -> str:
        flows = await self._flows.list_flows(where.user_id)
        if not flows:
            return i18n.t(where.lang, "flows_none")
        lines = [i18n.tn(where.lang, "flows_header", len(flows))]
        for f in flows:
            if f.valid:
                line = _clip(f"• {f.name}" + (f" — {f.description}" if f.description else ""))
                if f.next_run is not None:
                    when = f.next_run.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
                    line += i18n.t(where.lang, "flows_next_run", when=when)
                lines.append(line)
                continue
            first = f.errors[0] if f.errors else "?"
            more = len(f.errors) - 1
            extra = i18n.t(where.lang, "flows_more_errors", count=more) if more > 0 else ""
            lines.append(
                _clip(i18n.t(where.lang, "flows_invalid", name=f.name, error=first)) + extra
            )
        return "\n".join(lines)

    async def _start(self, raw: str, where: Where) -> str:
        name, _, rest = raw.strip().partition(" ")
        try:
            args = parse_args(rest.strip())
        except ValueError as exc:
            return i18n.t(where.lang, "flow_bad_args", error=exc)
        origin = Origin(where.channel, where.chat_id, where.session_id or "")
        try:
            run_id = await self._flows.start(where.user_id, name, args, origin)
        except EngineUnavailable:
            raise
        except FlowInvalid as exc:
            error = "; ".join(str(i) for i in exc.issues[:3])
            return i18n.t(where.lang, "flow_not_started", name=name, error=error)
        except FlowError as exc:
            return i18n.t(where.lang, "flow_not_started", name=name, error=exc.message)
        return i18n.t(where.lang, "flow_started", flow=name, id=run_id)

    async def _tasks(self, where: Where) -> str:
        runs = await self._flows.runs(where.user_id)
        if not runs:
            return i18n.t(where.lang, "tasks_none")
        shown = runs[:TASKS_SHOWN]
        lines = [i18n.tn(where.lang, "tasks_header", len(shown))]
        for summary in shown:
            try:
                run = await self._flows.run(where.user_id, summary.run_id)
            except RunNotFound:  # removed meanwhile
                continue
            state = i18n.t(where.lang, f"state_{run.status}")
            lines.append(
                f"{_ICONS.get(run.status, '·')} {run.run_id[:SHORT_ID]} {run.flow} — "
                f"{state}, {run.progress}%"
            )
        if len(runs) > len(shown):
            lines.append(i18n.t(where.lang, "tasks_more", count=len(runs) - len(shown)))
        return "\n".join(lines)

    async def _control(self, ident: str, action: str, where: Where) -> CommandResult:
        run_id = await self._resolve(ident, where)
        verb: Action = next(a for a in ACTIONS if a == action)
        try:
            new_id = await self._flows.control(where.user_id, run_id, verb)
        except RunNotFound as exc:
            raise _Unknown("task_not_found", ident) from exc
        except EngineUnavailable:
            raise
        except FlowError as exc:
            refused = i18n.t(where.lang, "task_refused", id=run_id[:SHORT_ID], error=exc.message)
            return await self._card(run_id, where, refused)
        done = i18n.t(where.lang, f"task_done_{verb}", id=run_id[:SHORT_ID], new=new_id)
        return await self._card(new_id, where, done)

    async def _resolve(self, ident: str, where: Where) -> str:
        """The full id of the caller's task ``ident`` (the id or a unique prefix)."""
        try:
            return (await self._flows.run(where.user_id, ident)).run_id
        except RunNotFound:
            pass
        if len(ident) >= MIN_PREFIX:
            found = [r.run_id for r in await self._flows.runs(where.user_id)]
            matches = [r for r in found if r.startswith(ident)]
            if len(matches) == 1:
                return matches[0]
            if matches:
                raise _Unknown("task_ambiguous", ident)
        raise _Unknown("task_not_found", ident)

    async def _card(self, run_id: str, where: Where, notice: str = "") -> CommandResult:
        try:
            run = await self._flows.run(where.user_id, run_id)
        except RunNotFound as exc:
            raise _Unknown("task_not_found", run_id) from exc
        card = task_card(run, where, notice)
        return CommandResult(f"{notice}\n{card.title}".strip(), outbound=card)


class _Unknown(Exception):
    """No such task for this user (or an ambiguous prefix); answered with ``key``."""

    def __init__(self, key: str, ident: str) -> None:
        super().__init__(key)
        self.key = key
        self.ident = ident


def task_card(run: RunStatus, where: Where, notice: str = "") -> PanelSnapshotOut:
    """The run as a card: a summary line, one line per stage, and its buttons."""
    lang = where.lang
    short = run.run_id[:SHORT_ID]
    summary = i18n.t(
        lang,
        "task_summary",
        state=i18n.t(lang, f"state_{run.status}"),
        progress=run.progress,
        tokens_in=run.tokens_in,
        tokens_out=run.tokens_out,
    )
    lines = [*([notice] if notice else []), summary]
    if run.error:
        lines.append(_clip(i18n.t(lang, "task_error", error=run.error)))
    lines += [stage_line(n, lang) for n in run.nodes]
    verbs = _BUTTONS.get(run.status, ())
    if verbs:
        lines.append(i18n.t(lang, "task_hint", id=short, actions="|".join(verbs)))
    return PanelSnapshotOut(
        channel=where.channel,
        chat_id=where.chat_id,
        session_id=where.session_id,
        panel_id=f"{TASK_ACTION}{run.run_id}",
        title=i18n.t(lang, "task_title", id=short, flow=run.flow),
        text=_plain("\n".join(lines)),
        buttons=tuple(
            ButtonSpec(label=i18n.t(lang, f"task_{v}"), action=task_action(run.run_id, v))
            for v in verbs
        ),
    )


def stage_line(node: NodeStatus, lang: str) -> str:
    parts = [f"{_ICONS.get(node.status, '·')} {node.node} ({node.type}): "]
    parts.append(i18n.t(lang, f"state_{node.status}"))
    if node.attempts > 1:
        parts.append(" · " + i18n.tn(lang, "task_attempts", node.attempts))
    if node.duration_s is not None:
        parts.append(" · " + i18n.t(lang, "task_seconds", seconds=f"{node.duration_s:.1f}"))
    if node.tokens_in or node.tokens_out:
        tokens = i18n.t(lang, "task_tokens", tokens_in=node.tokens_in, tokens_out=node.tokens_out)
        parts.append(" · " + tokens)
    if node.error:
        parts.append(" · " + i18n.t(lang, "task_error", error=node.error))
    elif node.output_preview and node.status == "completed":
        parts.append(f" → {node.output_preview}")
    return _clip("".join(parts))


def parse_args(raw: str) -> dict[str, Any]:
    """``{json}``, or ``key=value`` (a string) and ``key:=json`` (a number, boolean,
    list…) pairs, shell-quoted."""
    if not raw:
        return {}
    if raw.startswith("{"):
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise ValueError("the arguments are not valid JSON") from exc
        if not isinstance(value, dict):
            raise ValueError("the JSON arguments must be an object")
        return value
    try:
        pairs = shlex.split(raw)
    except ValueError as exc:
        raise ValueError("an unclosed quote") from exc
    args: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        typed = key.endswith(":")
        key = key.removesuffix(":")
        if not sep or not key.isidentifier():
            raise ValueError(f"'{pair}' is not key=value")
        if typed:
            try:
                args[key] = json.loads(value)
            except ValueError as exc:
                raise ValueError(f"'{key}:=' needs a JSON value") from exc
        else:
            args[key] = value
    return args


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_LINE else text[: MAX_LINE - 1] + "…"


def _plain(text: str) -> str:
    # Telegram reads a card's text as Markdown, the web page as HTML: no markup at all.
    return text.replace("<", "‹").replace(">", "›")
