"""Agent invocation records (migration 13, table ``agent_invocations``), SQLite or Postgres.

One row per invocation of a named agent (``agents/<name>.yaml``), whether over HTTP
(``source`` ``api``) or from a flow node (``source`` ``flow:<run id>:<node id>``):
input, output, status ``ok`` or ``error``, duration, tokens in and out, error.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from nexflow.storage.connection import SQLConnection, _tx
from nexflow.storage.engine import Conn, Row


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


_NAMES = tuple(f.name for f in fields(AgentInvocation))  # the table's columns
_COLS = ", ".join(_NAMES)


def _invocation(row: Row) -> AgentInvocation:
    return AgentInvocation(**{name: row[name] for name in _NAMES})


class AgentRepo(SQLConnection):
    """Agent invocation records of :class:`~nexflow.storage.sql_storage.SQLStorage`."""

    async def save_agent_invocation(self, record: AgentInvocation) -> None:
        def q(c: Conn) -> None:
            with _tx(c):
                c.execute(
                    f"INSERT INTO agent_invocations ({_COLS}) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
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

        def q(c: Conn) -> list[AgentInvocation]:
            rows = c.execute(
                f"SELECT {_COLS} FROM agent_invocations WHERE user_id=? AND agent=? "
                "ORDER BY created_at DESC LIMIT ?",
                (user_id, agent, limit),
            ).fetchall()
            return [_invocation(row) for row in rows]

        return await self._run(q)
