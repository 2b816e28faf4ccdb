"""The reminder tools the model gets: ``reminder_add``, ``reminder_list``, ``reminder_cancel``.

Each acts for ``ctx.user_id`` only, and a reminder goes back to the channel and chat in
``ctx`` it was created from. The ``skills/reminder`` skill teaches the model to use them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from nexflow.tasks import schedule
from nexflow.tasks.errors import ReminderError
from nexflow.tasks.model import Reminder, ReminderTarget
from nexflow.tasks.service import ReminderService
from nexflow.tools.base import Tool, ToolContext, ToolError, ToolResult, ToolSpec

MAX_MINUTES = 366 * 24 * 60


def _line(r: Reminder, service: ReminderService) -> str:
    tz = schedule.zone(r.timezone, service.timezone)
    when = schedule.describe(r.next_run, tz)
    repeat = f" (repeats: cron '{r.schedule}', {r.timezone})" if r.kind == "cron" else ""
    return f"{r.id}: {when}{repeat}: {r.text}"


class ReminderAddTool:
    """Schedules a reminder for the calling user, delivered back to this chat."""

    spec = ToolSpec(
        name="reminder_add",
        deferred=True,
        description=(
            "Schedule a reminder sent back to this chat. Give exactly one of at, "
            "in_minutes or cron."
        ),
        parameters={
            "type": "object",
            "properties": {
                "text": {"type": "string", "description": "What to remind the user of."},
                "at": {"type": "string", "description": "ISO 8601 time, e.g. 2025-06-01T09:00"},
                "in_minutes": {"type": "number"},
                "cron": {
                    "type": "string",
                    "description": "Repeat: 'min hour day month weekday', weekday 0=Sunday",
                },
                "timezone": {"type": "string", "description": "IANA zone, e.g. Europe/Berlin"},
            },
            "required": ["text"],
        },
        effects=frozenset({"write"}),  # a stored reminder, sent to this chat later
    )

    def __init__(self, service: ReminderService) -> None:
        self._service = service

    async def run(self, args: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        target = ReminderTarget(ctx.user_id, ctx.channel, ctx.chat_id, ctx.session_id)
        text = args.get("text")
        if not isinstance(text, str):
            raise ToolError("'text' must be a string")
        tz_name = args.get("timezone")
        if tz_name is not None and not isinstance(tz_name, str):
            raise ToolError("'timezone' must be an IANA zone name")
        given = [k for k in ("at", "in_minutes", "cron") if args.get(k) not in (None, "")]
        if len(given) != 1:
            raise ToolError("give exactly one of 'at', 'in_minutes' or 'cron'")
        try:
            reminder = await self._schedule(
                given[0], args, target, text, tz_name, ctx.idempotency_key
            )
        except ReminderError as e:
            raise ToolError(e.message) from e
        return ToolResult(
            f"Reminder set. {_line(reminder, self._service)}", data=reminder.to_json()
        )

    async def _schedule(
        self,
        how: str,
        args: Mapping[str, Any],
        target: ReminderTarget,
        text: str,
        tz_name: str | None,
        ctx_key: str | None,
    ) -> Reminder:
        """``ctx_key``: the call's idempotency key (a flow step's): the reminder is added once."""
        tz = schedule.zone(tz_name, self._service.timezone)
        value = args[how]
        if how == "cron":
            if not isinstance(value, str):
                raise ToolError("'cron' must be a crontab line")
            return await self._service.add_cron(
                target, text, value, timezone=tz_name, idempotency_key=ctx_key
            )
        if how == "at":
            if not isinstance(value, str):
                raise ToolError("'at' must be an ISO 8601 date-time string")
            return await self._service.add_once(
                target,
                text,
                schedule.parse_at(value, tz),
                timezone=tz_name,
                idempotency_key=ctx_key,
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ToolError("'in_minutes' must be a number")
        if not (math.isfinite(value) and 0 < value <= MAX_MINUTES):
            raise ToolError(f"'in_minutes' must be between 0 and {MAX_MINUTES}")
        return await self._service.add_in(
            target,
            text,
            timedelta(minutes=float(value)),
            timezone=tz_name,
            idempotency_key=ctx_key,
        )


class ReminderListTool:
    """Lists the calling user's reminders."""

    spec = ToolSpec(
        name="reminder_list",
        deferred=True,
        description="List the user's scheduled reminders with their ids and next times.",
        parameters={"type": "object", "properties": {}},
    )

    def __init__(self, service: ReminderService) -> None:
        self._service = service

    async def run(self, args: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        reminders = await self._service.list_for(ctx.user_id)
        if not reminders:
            return ToolResult("You have no reminders.", data={"reminders": []})
        lines = [_line(r, self._service) for r in reminders]
        return ToolResult("\n".join(lines), data={"reminders": [r.to_json() for r in reminders]})


class ReminderCancelTool:
    """Cancels one of the calling user's reminders by id."""

    spec = ToolSpec(
        name="reminder_cancel",
        deferred=True,
        description="Cancel one of the user's reminders by its id (see reminder_list).",
        parameters={
            "type": "object",
            "properties": {"id": {"type": "string", "description": "Reminder id, e.g. r1a2b3c4d"}},
            "required": ["id"],
        },
        effects=frozenset({"write"}),
    )

    def __init__(self, service: ReminderService) -> None:
        self._service = service

    async def run(self, args: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        rid = args.get("id")
        if not isinstance(rid, str) or not rid:
            raise ToolError("'id' must be a reminder id from reminder_list")
        try:
            reminder = await self._service.cancel(ctx.user_id, rid.strip())
        except ReminderError as e:
            raise ToolError(e.message) from e
        return ToolResult(f"Cancelled {reminder.id}: {reminder.text}", data=reminder.to_json())


def reminder_tools(service: ReminderService) -> list[Tool]:
    """The three reminder tools, ready for ``ToolRegistry.add``."""
    return [ReminderAddTool(service), ReminderListTool(service), ReminderCancelTool(service)]
