"""Agent invocation records in SQLite (migration 13, table ``agent_invocations``).

One row per invocation of a named agent (``agents/<name>.yaml``), whether over HTTP
(``source`` ``api``) or from a flow node (``source`` ``flow:<run id>:<node id>``):
input, output, status ``ok`` or ``error``, duration, tokens in and out, error.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from nexflow.storage.sqlite_conn import SQLiteConnection, _tx

_COLS = (
    "id, user_id, agent, source, input, output, status, error, duration_s, tokens_in, "
    "tokens_out, created_at"
)


@dataclass(frozen=True, slots=True)
class AgentInvocation:
    """One recorded invocation of a named agent."""

    id: str
    user_id: str
    agent: str
    source: str
    input: str
    output: str | None
    status: str
    error: str | None
    duration_s: float
    tokens_in: int
    tokens_out: int
    created_at: float


class SQLiteAgents(SQLiteConnection):
    """Agent invocation records of :class:`~nexflow.storage.sqlite.SQLiteStorage`."""

    async def save_agent_invocation(self, record: AgentInvocation) -> None:
        def q(c: sqlite3.Connection) -> None:
            with _tx(c):
                c.execute(
                    f"INSERT OR IGNORE INTO agent_invocations ({_COLS}) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        record.id,
                        record.user_id,
                        record.agent,
                        record.source,
                        record.input,
                        record.output,
                        record.status,
                        record.error,
                        record.duration_s,
                        record.tokens_in,
                        record.tokens_out,
                        record.created_at,
                    ),
                )

        await self._run(q)

    async def agent_invocations(
        self, user_id: str, agent: str, limit: int = 100
    ) -> list[AgentInvocation]:
        """The user's invocations of ``agent``, newest first."""

        def q(c: sqlite3.Connection) -> list[AgentInvocation]:
            rows = c.execute(
                f"SELECT {_COLS} FROM agent_invocations WHERE user_id=? AND agent=? "
                "ORDER BY created_at DESC LIMIT ?",
                (user_id, agent, limit),
            ).fetchall()
            return [AgentInvocation(*row) for row in rows]

        return await self._run(q)
