"""Built-in tools that need nothing but the standard library."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nexflow.tools.base import ToolContext, ToolError, ToolResult, ToolSpec


class GetTime:
    """The current date and time, in UTC or a named time zone."""

    spec = ToolSpec(
        name="get_time",
        deferred=True,
        description="Current date and time. Optional IANA time zone, e.g. Europe/Moscow.",
        parameters={
            "type": "object",
            "properties": {"timezone": {"type": "string", "description": "IANA zone name"}},
        },
    )

    def __init__(self, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._now = now

    async def run(self, args: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        zone_name = args.get("timezone") or "UTC"
        try:
            zone = ZoneInfo(str(zone_name))
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ToolError(
                f"unknown time zone {zone_name!r}; use an IANA name like Europe/Berlin"
            ) from exc
        now = self._now().astimezone(zone)
        return ToolResult(
            content=now.strftime("%Y-%m-%d %H:%M:%S %Z (%A)"),
            data={"iso": now.isoformat(), "timezone": str(zone_name)},
        )
