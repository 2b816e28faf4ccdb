"""The implementation of :class:`~nexflow.storage.base.Storage`, on SQLite (default) or
Postgres: the same queries run on either engine (see ``connection`` and ``engine``).

:class:`SQLStorage` writes no SQL of its own: it is the composition of one repository per
aggregate (:mod:`nexflow.storage.base` lists them), each a mixin over the same
:class:`~nexflow.storage.connection.SQLConnection`. That shared connection is what lets a
turn's writes span aggregates in one transaction: the transition that ends a turn is one
function on the connection inside one ``BEGIN … COMMIT`` (``QueueRepo.complete``: the
session's messages, the audit records, the reply and files in the outbox, the inbox row
``done``, the checkpoint and used answers; ``TurnRepo.park_turn``: checkpoint, approval,
the question in the outbox, audit; ``fail_turn``, ``bury_turn``). It writes through the
row helpers the repositories share (``insert_outbox``, ``_insert_audit``,
``select_history``), never through another repository's methods, each of which would be
a transaction of its own. The steps of a turn are in :mod:`nexflow.storage.base`;
``tests/storage/test_aggregates.py`` checks a result refused half way leaves nothing.
"""

from __future__ import annotations

from nexflow.storage.repo_agents import AgentRepo
from nexflow.storage.repo_audit import AuditRepo
from nexflow.storage.repo_dashboard import DashboardRepo
from nexflow.storage.repo_flows import FlowRepo
from nexflow.storage.repo_hooks import HookRepo
from nexflow.storage.repo_identity import IdentityRepo
from nexflow.storage.repo_queue import QueueRepo
from nexflow.storage.repo_sessions import SessionRepo
from nexflow.storage.repo_stats import StatsRepo
from nexflow.storage.repo_turns import TurnRepo
from nexflow.storage.repo_usage import UsageRepo


class SQLStorage(
    IdentityRepo,
    SessionRepo,
    QueueRepo,
    TurnRepo,
    AuditRepo,
    UsageRepo,
    HookRepo,
    StatsRepo,
    FlowRepo,
    AgentRepo,
    DashboardRepo,
):
    """The storage: a single SQLite file (default), or a Postgres database given a
    :class:`~nexflow.storage.engine.PostgresEngine`. It is every aggregate of
    :mod:`nexflow.storage.base` (and the flow, usage, agent and lease repositories)."""
