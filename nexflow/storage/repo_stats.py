"""Statistics read from the audit log, messages, usage and queues (mixed into ``SQLStorage``).

Every query is scoped to one user (``user_id``) or, with None, to everyone; the records
and what counts as a failure are in :mod:`nexflow.storage.stats`. The audit indexes of
migration 11 (``(kind, name, ts)`` and ``(user_id, ts)``) serve the time windows.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from nexflow.storage.connection import SQLConnection
from nexflow.storage.dialect import json_num, json_text, utc_day
from nexflow.storage.engine import Conn, Dialect
from nexflow.storage.repo_usage import USAGE_SUMS, usage_row
from nexflow.storage.stats import Activity, Backlog, CallKind, Invocations, ModelUsage, ToolUsage

_CALLS = "kind IN ('tool_call', 'skill_run')"
# 1 for a failed call, else 0 (a CASE, not a boolean: Postgres does not SUM booleans).
_FAILED = (
    "CASE WHEN outcome != CASE kind WHEN 'tool_call' THEN 'ok' ELSE 'ran' END THEN 1 ELSE 0 END"
)


def _duration(d: Dialect) -> str:
    # tool_call rows record duration_s; skill_run rows duration_ms.
    return (
        f"CASE kind WHEN 'tool_call' THEN {json_num(d, 'data', '$.duration_s')} "
        f"ELSE {json_num(d, 'data', '$.duration_ms')} / 1000.0 END"
    )


# In: the user's messages; out: the replies (assistant messages that call no tool).
_IN_OUT = (
    "COALESCE(SUM(CASE WHEN m.role = 'user' THEN 1 ELSE 0 END), 0) AS messages_in, "
    "COALESCE(SUM(CASE WHEN m.role = 'assistant' AND m.tool_calls IS NULL THEN 1 ELSE 0 END), 0) "
    "AS messages_out"
)


def _mine(user_id: str | None, column: str = "user_id") -> tuple[str, tuple[Any, ...]]:
    return (f" AND {column} = ?", (user_id,)) if user_id is not None else ("", ())


class StatsRepo(SQLConnection):
    async def tool_usage(self, user_id: str | None, since: float = 0.0) -> list[ToolUsage]:
        """Calls, failures and the last call of every tool and skill called since ``since``."""
        mine, args = _mine(user_id)

        def q(c: Conn) -> list[ToolUsage]:
            rows = c.execute(
                f"SELECT kind, name, COUNT(*) AS calls, SUM({_FAILED}) AS failures, "
                f"MAX(ts) AS last FROM audit "
                f"WHERE {_CALLS} AND ts >= ?{mine} GROUP BY kind, name ORDER BY kind, name",
                (since, *args),
            ).fetchall()
            return [
                ToolUsage(
                    r["kind"], str(r["name"]), int(r["calls"]), int(r["failures"]), float(r["last"])
                )
                for r in rows
            ]

        return await self._run(q)

    async def invocations(
        self, user_id: str | None, since: float, name: str | None = None
    ) -> list[Invocations]:
        """Per UTC day and tool (or skill) since ``since``: calls, failures, mean and p95
        duration; ``name`` keeps one tool's (or skill's) rows. Day, then name order."""
        mine, args = _mine(user_id)
        named, more = (" AND name = ?", (name,)) if name is not None else ("", ())

        def q(c: Conn) -> list[Invocations]:
            rows = c.execute(
                f"SELECT {utc_day(c.dialect, 'ts')} AS day, kind, name, {_FAILED} AS failed, "
                f"{_duration(c.dialect)} AS duration FROM audit "
                f"WHERE {_CALLS} AND ts >= ?{mine}{named}",
                (since, *args, *more),
            ).fetchall()
            groups: dict[tuple[str, CallKind, str], list[tuple[bool, float | None]]] = defaultdict(
                list
            )
            for r in rows:
                duration = r["duration"]
                seconds = float(duration) if isinstance(duration, int | float) else None
                groups[(str(r["day"]), r["kind"], str(r["name"]))].append(
                    (bool(r["failed"]), seconds)
                )
            return [_invocations(key, calls) for key, calls in sorted(groups.items())]

        return await self._run(q)

    async def activity(self, user_id: str | None, since: float, first_day: str) -> Activity:
        """Messages, turns and calls since ``since`` (epoch seconds), model use on UTC days
        from ``first_day`` on ("" = all time)."""
        mine, args = _mine(user_id)

        def q(c: Conn) -> Activity:
            if user_id is None:
                messages = c.execute(
                    f"SELECT {_IN_OUT} FROM messages m WHERE m.created_at >= ?", (since,)
                ).fetchone()
            else:
                messages = c.execute(
                    f"SELECT {_IN_OUT} FROM sessions s JOIN messages m ON m.session_id = s.id "
                    "WHERE s.user_id = ? AND m.created_at >= ?",
                    (user_id, since),
                ).fetchone()
            turns = c.execute(
                f"SELECT COUNT(*) AS n FROM audit WHERE kind = 'message_in' AND ts >= ?{mine}",
                (since, *args),
            ).fetchone()
            calls = {
                str(r["kind"]): (int(r["calls"]), int(r["failures"]))
                for r in c.execute(
                    f"SELECT kind, COUNT(*) AS calls, SUM({_FAILED}) AS failures FROM audit "
                    f"WHERE {_CALLS} AND ts >= ?{mine} GROUP BY kind",
                    (since, *args),
                ).fetchall()
            }
            models = c.execute(
                f"SELECT model, {USAGE_SUMS} "
                f"FROM llm_usage WHERE day >= ? AND model NOT LIKE 'charge:%'{mine} "
                "GROUP BY model ORDER BY model",
                (first_day, *args),
            ).fetchall()
            tools, skills = calls.get("tool_call", (0, 0)), calls.get("skill_run", (0, 0))
            return Activity(
                messages_in=int(messages["messages_in"] or 0),
                messages_out=int(messages["messages_out"] or 0),
                turns=int(turns["n"]),
                tool_calls=tools[0],
                tool_failures=tools[1],
                skill_runs=skills[0],
                skill_failures=skills[1],
                models=tuple(_model_usage(r) for r in models),
            )

        return await self._run(q)

    async def backlog(self, user_id: str | None, now: float) -> Backlog:
        """Dead letters and pending (unexpired) approvals now."""
        mine, args = _mine(user_id)

        def q(c: Conn) -> Backlog:
            sender, sender_args = _mine(user_id, json_text(c.dialect, "payload", "$.user_id"))
            dead = c.execute(
                f"SELECT COUNT(*) AS n FROM inbox WHERE status = 'dead'{sender}", sender_args
            ).fetchone()
            pending = c.execute(
                "SELECT COUNT(*) AS n FROM approvals "
                f"WHERE status = 'pending' AND expires_at > ?{mine}",
                (now, *args),
            ).fetchone()
            return Backlog(int(dead["n"]), int(pending["n"]))

        return await self._run(q)


def _model_usage(r: Any) -> ModelUsage:
    u = usage_row(str(r["model"]), r)
    return ModelUsage(u.model, u.calls, u.tokens_in, u.tokens_out, u.cost_usd)


def _invocations(
    key: tuple[str, CallKind, str], calls: list[tuple[bool, float | None]]
) -> Invocations:
    day, kind, name = key
    durations = sorted(d for _, d in calls if d is not None)
    mean = round(sum(durations) / len(durations), 4) if durations else None
    # Nearest rank: the smallest duration with at least 95% of the calls at or below it.
    rank = max(0, math.ceil(0.95 * len(durations)) - 1)
    p95 = round(durations[rank], 4) if durations else None
    failures = sum(1 for failed, _ in calls if failed)
    return Invocations(day, kind, name, len(calls), failures, mean, p95)
