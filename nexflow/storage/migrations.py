"""Versioned schema migrations. Append a new entry; never edit a released one."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from nexflow.storage.base import StorageError
from nexflow.storage.dialect import begin, ddl

if TYPE_CHECKING:
    from nexflow.storage.engine import Conn


class MigrationError(StorageError):
    """The schema cannot be brought to this code's version."""


MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "initial schema",
        """
        CREATE TABLE users (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            role TEXT NOT NULL DEFAULT 'user',
            lang TEXT,
            created_at REAL NOT NULL
        );
        CREATE TABLE identities (
            channel TEXT NOT NULL,
            external_id TEXT NOT NULL,
            user_id TEXT NOT NULL REFERENCES users(id),
            created_at REAL NOT NULL,
            PRIMARY KEY (channel, external_id)
        );
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id),
            channel TEXT NOT NULL,
            chat_id TEXT NOT NULL,
            title TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE INDEX sessions_user ON sessions(user_id, updated_at);
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            session_id TEXT NOT NULL REFERENCES sessions(id),
            inbox_id INTEGER,
            role TEXT NOT NULL,
            content TEXT NOT NULL,
            tool_calls TEXT,
            tool_call_id TEXT,
            name TEXT,
            created_at REAL NOT NULL
        );
        CREATE INDEX messages_session ON messages(session_id, id);
        CREATE TABLE inbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            dedup_key TEXT NOT NULL UNIQUE,
            session_id TEXT NOT NULL,
            payload TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            done_at REAL
        );
        CREATE INDEX inbox_status ON inbox(status, id);
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            inbox_id INTEGER UNIQUE,
            channel TEXT NOT NULL,
            chat_id TEXT NOT NULL,
            payload TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            last_error TEXT,
            created_at REAL NOT NULL,
            delivered_at REAL
        );
        CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
        CREATE INDEX outbox_chat ON outbox(channel, chat_id, status, id);
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts REAL NOT NULL,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            outcome TEXT NOT NULL,
            user_id TEXT,
            session_id TEXT,
            data TEXT NOT NULL
        );
        CREATE INDEX audit_kind ON audit(kind, id);
        CREATE TABLE tasks (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            payload TEXT NOT NULL,
            result TEXT,
            progress REAL NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        """,
    ),
    (
        2,
        "panel instances and their state versions",
        """
        CREATE TABLE panels (
            id TEXT PRIMARY KEY,
            template TEXT NOT NULL,
            owner TEXT NOT NULL,
            title TEXT NOT NULL,
            nxml TEXT NOT NULL,
            state TEXT NOT NULL,
            view TEXT NOT NULL,
            version INTEGER NOT NULL,
            grants TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE panel_versions (
            panel_id TEXT NOT NULL REFERENCES panels(id) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            kind TEXT NOT NULL,
            tool TEXT,
            args TEXT NOT NULL,
            state_before TEXT NOT NULL,
            state_after TEXT NOT NULL,
            view_before TEXT NOT NULL,
            view_after TEXT NOT NULL,
            effects TEXT NOT NULL,
            triggered_by TEXT NOT NULL,
            user_id TEXT,
            created_at REAL NOT NULL,
            PRIMARY KEY (panel_id, version)
        );
        """,
    ),
    (
        3,
        "reminder jobs (APScheduler job store)",
        """
        CREATE TABLE reminder_jobs (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            next_run_time REAL,
            job_state BLOB NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE INDEX reminder_jobs_due ON reminder_jobs(next_run_time);
        CREATE INDEX reminder_jobs_user ON reminder_jobs(user_id, next_run_time);
        """,
    ),
    (
        4,
        "pairing requests and link codes",
        """
        CREATE TABLE pairing_requests (
            channel TEXT NOT NULL,
            code TEXT NOT NULL,
            sender_id TEXT NOT NULL,
            chat_id TEXT NOT NULL,
            name TEXT NOT NULL,
            lang TEXT,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            PRIMARY KEY (channel, code)
        );
        CREATE UNIQUE INDEX pairing_sender ON pairing_requests(channel, sender_id);
        CREATE TABLE link_codes (
            code TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id),
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL
        );
        CREATE INDEX link_codes_user ON link_codes(user_id);
        """,
    ),
    (
        5,
        "LLM token usage per user, day and model (budgets, statistics)",
        """
        CREATE TABLE llm_usage (
            user_id TEXT NOT NULL,
            day TEXT NOT NULL,
            scope TEXT NOT NULL,
            model TEXT NOT NULL,
            calls INTEGER NOT NULL DEFAULT 0,
            tokens_in INTEGER NOT NULL DEFAULT 0,
            tokens_out INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (user_id, day, scope, model)
        );
        CREATE INDEX llm_usage_day ON llm_usage(day);
        """,
    ),
    (
        6,
        "workspace patches and shares",
        """
        CREATE TABLE patches (
            id TEXT PRIMARY KEY,
            workspace TEXT NOT NULL,
            user_id TEXT NOT NULL,
            target TEXT NOT NULL,
            status TEXT NOT NULL,
            summary TEXT NOT NULL,
            branch TEXT NOT NULL,
            base TEXT NOT NULL,
            head TEXT NOT NULL,
            source TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            merge_commit TEXT NOT NULL DEFAULT '',
            applied INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE INDEX patches_user ON patches(user_id, status, created_at);
        CREATE INDEX patches_workspace ON patches(workspace, status);
        CREATE TABLE workspace_shares (
            workspace TEXT NOT NULL,
            user_id TEXT NOT NULL,
            branch TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (workspace, user_id)
        );
        CREATE INDEX workspace_shares_user ON workspace_shares(user_id);
        """,
    ),
    (
        7,
        "the workspace a panel belongs to",
        # Every panel was mirrored into its owner's default workspace until now.
        """
        ALTER TABLE panels ADD COLUMN workspace TEXT NOT NULL DEFAULT 'default';
        """,
    ),
    (
        8,
        "durable turns: checkpoints of parked turns, approvals, dead letters",
        # inbox.status: pending (accepted, or resumable) → running → awaiting (parked on an
        # approval) → pending … → done | dead. attempts counts the runs that started.
        """
        ALTER TABLE inbox ADD COLUMN last_error TEXT;
        ALTER TABLE inbox ADD COLUMN updated_at REAL;
        CREATE TABLE turns (
            inbox_id INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            state TEXT NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE approvals (
            id TEXT PRIMARY KEY,
            inbox_id INTEGER,
            user_id TEXT NOT NULL,
            channel TEXT NOT NULL,
            chat_id TEXT NOT NULL,
            session_id TEXT,
            title TEXT NOT NULL,
            detail TEXT NOT NULL,
            call_key TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            decided_at REAL
        );
        CREATE INDEX approvals_user ON approvals(user_id, status);
        CREATE INDEX approvals_expiry ON approvals(status, expires_at);
        CREATE INDEX approvals_inbox ON approvals(inbox_id)
        """,
    ),
    (
        9,
        "outbox rows know their session; web items park until a tab acknowledges them",
        # outbox.status gains 'parked': nobody was there to acknowledge the item (no open
        # tab of its session). Parked items are not due and count no attempt; a tab that
        # (re)connects to the session sets them back to 'pending'.
        """
        ALTER TABLE outbox ADD COLUMN session_id TEXT;
        UPDATE outbox SET session_id = json_extract(payload, '$.item.session_id');
        CREATE INDEX outbox_session ON outbox(session_id, id)
        """,
    ),
    (
        10,
        "inbound webhook deliveries already seen (replay protection)",
        """
        CREATE TABLE webhook_deliveries (hook TEXT NOT NULL, delivery TEXT NOT NULL,
            received_at REAL NOT NULL, PRIMARY KEY (hook, delivery))
        """,
    ),
    (
        11,
        "audit indexes for the tool registry and statistics (per tool, per user, by time)",
        """
        CREATE INDEX audit_kind_name_ts ON audit(kind, name, ts);
        CREATE INDEX audit_user_ts ON audit(user_id, ts)
        """,
    ),
    (
        12,
        "flows in the gateway: tool results by idempotency key, run taint, approval lookup",
        """
        CREATE TABLE flow_tool_results (key TEXT PRIMARY KEY, run_id TEXT NOT NULL,
            user_id TEXT NOT NULL, result TEXT NOT NULL, created_at REAL NOT NULL);
        CREATE INDEX flow_tool_results_run ON flow_tool_results(run_id);
        CREATE TABLE flow_trust (run_id TEXT PRIMARY KEY, sources TEXT NOT NULL DEFAULT '[]',
            tainted_at REAL, approved_at REAL);
        CREATE INDEX approvals_call_key ON approvals(call_key)
        """,
    ),
    (
        13,
        "agent invocations (named agents, on their own and from flow nodes)",
        """
        CREATE TABLE agent_invocations (id TEXT PRIMARY KEY, user_id TEXT NOT NULL,
            agent TEXT NOT NULL, source TEXT NOT NULL, input TEXT NOT NULL,
            output TEXT, status TEXT NOT NULL, error TEXT, duration_s REAL NOT NULL,
            tokens_in INTEGER NOT NULL, tokens_out INTEGER NOT NULL, created_at REAL NOT NULL);
        CREATE INDEX agent_invocations_user ON agent_invocations(user_id, agent, created_at)
        """,
    ),
    (
        14,
        "LLM budget reservations shared by replicas (Postgres; SQLite keeps a TEMP table)",
        # SQLite's reservations are its one connection's TEMP table of the same name (a
        # crash takes them with it), which shadows this one; see storage/repo_usage.py.
        """
        CREATE TABLE llm_reservations (id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id TEXT NOT NULL, scope TEXT NOT NULL, day TEXT NOT NULL,
            tokens INTEGER NOT NULL, expires_at REAL NOT NULL);
        CREATE INDEX llm_reservations_user ON llm_reservations(user_id, scope, day)
        """,
    ),
    (
        15,
        "flow approvals count by graph position: the run-level taint table goes",
        # Taint and approvals now travel with the node results in the durable run
        # (nexflow/flows/clearance.py); nothing reads flow_trust any more.
        """
        DROP TABLE flow_trust
        """,
    ),
    (
        16,
        "a panel press is applied once per event (a retried HTTP request, a replayed step)",
        """
        ALTER TABLE panel_versions ADD COLUMN event_key TEXT;
        CREATE UNIQUE INDEX panel_versions_event ON panel_versions(panel_id, event_key)
        """,
    ),
)


MIGRATION_LOCK = 7_331_001  # the Postgres advisory lock replicas take to migrate one at a time


def migrate(conn: Conn) -> int:
    """Bring the schema to the newest version; return that version. The same history
    runs on both engines (:func:`nexflow.storage.dialect.ddl` adapts the types)."""
    if conn.dialect == "postgresql":
        conn.execute("SELECT pg_advisory_lock(?)", (MIGRATION_LOCK,))
    try:
        return _migrate(conn)
    finally:
        if conn.dialect == "postgresql":
            conn.execute("SELECT pg_advisory_unlock(?)", (MIGRATION_LOCK,))


def _migrate(conn: Conn) -> int:
    conn.execute(
        ddl(
            conn.dialect,
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at REAL NOT NULL)",
        )
    )
    row = conn.execute("SELECT MAX(version) AS v FROM schema_version").fetchone()
    current = int(row["v"] or 0)
    newest = MIGRATIONS[-1][0]
    if current > newest:
        raise MigrationError(
            f"the database schema is version {current}, newer than this Nexflow ({newest}); "
            "upgrade Nexflow or point storage.url at another database"
        )
    for version, description, sql in MIGRATIONS:
        if version <= current:
            continue
        try:
            conn.execute(begin(conn.dialect))
            for statement in filter(str.strip, sql.split(";")):
                conn.execute(ddl(conn.dialect, statement))
            conn.execute(
                "INSERT INTO schema_version VALUES (?, ?, ?)", (version, description, time.time())
            )
            conn.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise MigrationError(f"migration {version} ({description}) failed: {exc}") from exc
    return newest
