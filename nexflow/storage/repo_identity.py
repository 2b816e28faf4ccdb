"""Users and their identities, languages, pairing requests and link codes (mixed into
``SQLStorage``).

Codes are 6 characters from an alphabet without look-alikes (no 0/O, 1/I/L), compared
case-insensitively. A sender has at most one live pairing request per channel; a user at
most one live link code. Approvals, denials and links are audited in the same
transaction as the change.
"""

from __future__ import annotations

import secrets
import time
import uuid

from nexflow.storage.base import AuditRecord, PairingRequest
from nexflow.storage.connection import SQLConnection, _insert_audit, _tx
from nexflow.storage.dialect import for_update, key_lock
from nexflow.storage.engine import Conn, Row

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
_PAIRING_FIELDS = (
    "channel", "code", "sender_id", "chat_id", "name", "lang", "created_at", "expires_at",
)  # fmt: skip
_PAIRING_COLS = ", ".join(_PAIRING_FIELDS)


# The Postgres advisory lock namespace of a sender (channel:external id) being identified.
IDENTITY_LOCK = 7_331_010


def lock_key(c: Conn, namespace: int, key: str) -> None:
    """Serialise this transaction with others on ``key`` (Postgres; a no-op on SQLite,
    whose ``BEGIN IMMEDIATE`` already did)."""
    lock = key_lock(c.dialect, namespace)
    if lock is not None:
        c.execute(lock, (key,))


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def _pairing(row: Row) -> PairingRequest:
    return PairingRequest(**{k: row[k] for k in _PAIRING_FIELDS})


class IdentityRepo(SQLConnection):
    """Identity operations of :class:`~nexflow.storage.sql_storage.SQLStorage`
    (the :class:`~nexflow.storage.base.Identities` aggregate)."""

    async def find_user(self, channel: str, external_id: str) -> tuple[str, str] | None:
        def q(c: Conn) -> tuple[str, str] | None:
            row = c.execute(
                "SELECT u.id, u.role FROM identities i JOIN users u ON u.id = i.user_id "
                "WHERE i.channel=? AND i.external_id=?",
                (channel, external_id),
            ).fetchone()
            return (str(row["id"]), str(row["role"])) if row else None

        return await self._run(q)

    async def create_user(self, name: str, role: str, channel: str, external_id: str) -> str:
        def q(c: Conn) -> str:
            now = time.time()
            with _tx(c):
                # Postgres: one sender created once, and one owner, by concurrent replicas.
                lock_key(
                    c, IDENTITY_LOCK, "owner" if role == "owner" else f"{channel}:{external_id}"
                )
                row = c.execute(
                    "SELECT user_id FROM identities WHERE channel=? AND external_id=?",
                    (channel, external_id),
                ).fetchone()
                if row:
                    return str(row["user_id"])
                # The owner is one person on every channel (security.owner, the gateway
                # token): a new owner identity joins the existing owner user.
                owner = (
                    c.execute(
                        "SELECT id FROM users WHERE role='owner' ORDER BY created_at LIMIT 1"
                    ).fetchone()
                    if role == "owner"
                    else None
                )
                user_id = str(owner["id"]) if owner else uuid.uuid4().hex
                if owner is None:
                    c.execute(
                        "INSERT INTO users (id, name, role, created_at) VALUES (?,?,?,?)",
                        (user_id, name, role, now),
                    )
                c.execute(
                    "INSERT INTO identities (channel, external_id, user_id, created_at) "
                    "VALUES (?,?,?,?)",
                    (channel, external_id, user_id, now),
                )
                return user_id

        return await self._run(q)

    async def user_lang(self, user_id: str) -> str | None:
        def q(c: Conn) -> str | None:
            row = c.execute("SELECT lang FROM users WHERE id=?", (user_id,)).fetchone()
            return str(row["lang"]) if row and row["lang"] else None

        return await self._run(q)

    async def set_user_lang(self, user_id: str, lang: str) -> None:
        await self._exec("UPDATE users SET lang=? WHERE id=?", (lang, user_id))

    # -- pairing ------------------------------------------------------------------

    async def pairing_request(
        self, channel: str, sender_id: str, chat_id: str, name: str, lang: str | None, ttl_s: float
    ) -> tuple[PairingRequest, bool]:
        def q(c: Conn) -> tuple[PairingRequest, bool]:
            now = time.time()
            with _tx(c):
                lock_key(c, IDENTITY_LOCK, f"{channel}:{sender_id}")
                row = c.execute(
                    f"SELECT {_PAIRING_COLS} FROM pairing_requests WHERE channel=? AND sender_id=?",
                    (channel, sender_id),
                ).fetchone()
                if row is not None and float(row["expires_at"]) > now:
                    return _pairing(row), False
                c.execute("DELETE FROM pairing_requests WHERE expires_at<=?", (now,))
                while True:
                    request = PairingRequest(
                        channel, new_code(), sender_id, chat_id, name, lang, now, now + ttl_s
                    )
                    taken = c.execute(
                        "SELECT 1 FROM pairing_requests WHERE channel=? AND code=?",
                        (channel, request.code),
                    ).fetchone()
                    if not taken:
                        break
                c.execute(
                    f"INSERT INTO pairing_requests ({_PAIRING_COLS}) VALUES (?,?,?,?,?,?,?,?)",
                    (
                        request.channel,
                        request.code,
                        sender_id,
                        chat_id,
                        name,
                        lang,
                        now,
                        request.expires_at,
                    ),
                )
                _insert_audit(
                    c,
                    [
                        AuditRecord(
                            "pairing",
                            "requested",
                            "pending",
                            data={"channel": channel, "sender_id": sender_id, "name": name},
                        )
                    ],
                    now,
                )
                return request, True

        return await self._run(q)

    async def pairing_requests(self) -> list[PairingRequest]:
        def q(c: Conn) -> list[PairingRequest]:
            rows = c.execute(
                f"SELECT {_PAIRING_COLS} FROM pairing_requests WHERE expires_at>? "
                "ORDER BY created_at",
                (time.time(),),
            ).fetchall()
            return [_pairing(r) for r in rows]

        return await self._run(q)

    async def approve_pairing(self, channel: str, code: str) -> tuple[PairingRequest, str] | None:
        def q(c: Conn) -> tuple[PairingRequest, str] | None:
            now = time.time()
            with _tx(c):
                request = _take_request(c, channel, code, now)
                if request is None:
                    return None
                row = c.execute(
                    "SELECT user_id FROM identities WHERE channel=? AND external_id=?",
                    (channel, request.sender_id),
                ).fetchone()
                if row is not None:  # linked meanwhile: nothing to create
                    user_id = str(row["user_id"])
                else:
                    user_id = uuid.uuid4().hex
                    c.execute(
                        "INSERT INTO users (id, name, role, lang, created_at) VALUES (?,?,?,?,?)",
                        (user_id, request.name, "user", request.lang, now),
                    )
                    c.execute(
                        "INSERT INTO identities (channel, external_id, user_id, created_at) "
                        "VALUES (?,?,?,?)",
                        (channel, request.sender_id, user_id, now),
                    )
                _audit_decision(c, request, "approved", user_id, now)
                return request, user_id

        return await self._run(q)

    async def deny_pairing(self, channel: str, code: str) -> PairingRequest | None:
        def q(c: Conn) -> PairingRequest | None:
            now = time.time()
            with _tx(c):
                request = _take_request(c, channel, code, now)
                if request is not None:
                    _audit_decision(c, request, "denied", None, now)
                return request

        return await self._run(q)

    # -- linking ------------------------------------------------------------------

    async def issue_link_code(self, user_id: str, ttl_s: float) -> str:
        def q(c: Conn) -> str:
            now = time.time()
            with _tx(c):
                c.execute("DELETE FROM link_codes WHERE user_id=? OR expires_at<=?", (user_id, now))
                while True:
                    code = new_code()
                    if not c.execute("SELECT 1 FROM link_codes WHERE code=?", (code,)).fetchone():
                        break
                c.execute(
                    "INSERT INTO link_codes (code, user_id, created_at, expires_at) "
                    "VALUES (?,?,?,?)",
                    (code, user_id, now, now + ttl_s),
                )
                return code

        return await self._run(q)

    async def redeem_link_code(self, code: str, channel: str, external_id: str) -> str | None:
        def q(c: Conn) -> str | None:
            now = time.time()
            with _tx(c):
                row = c.execute(
                    "SELECT user_id FROM link_codes WHERE code=? AND expires_at>?"
                    + for_update(c.dialect),
                    (code.upper(), now),
                ).fetchone()
                if row is None:
                    return None
                user_id = str(row["user_id"])
                c.execute("DELETE FROM link_codes WHERE code=?", (code.upper(),))
                before = c.execute(
                    "SELECT user_id FROM identities WHERE channel=? AND external_id=?",
                    (channel, external_id),
                ).fetchone()
                c.execute(
                    "INSERT INTO identities (channel, external_id, user_id, created_at) "
                    "VALUES (?,?,?,?) ON CONFLICT(channel, external_id) "
                    "DO UPDATE SET user_id=excluded.user_id",
                    (channel, external_id, user_id, now),
                )
                c.execute(
                    "DELETE FROM pairing_requests WHERE channel=? AND sender_id=?",
                    (channel, external_id),
                )
                data = {
                    "channel": channel,
                    "external_id": external_id,
                    "previous_user": str(before["user_id"]) if before else None,
                }
                _insert_audit(c, [AuditRecord("identity", "link", "ok", user_id, data=data)], now)
                return user_id

        return await self._run(q)


def _take_request(c: Conn, channel: str, code: str, now: float) -> PairingRequest | None:
    # Locked on Postgres: a request approved twice at once is taken once.
    row = c.execute(
        f"SELECT {_PAIRING_COLS} FROM pairing_requests WHERE channel=? AND code=? "
        f"AND expires_at>?{for_update(c.dialect)}",
        (channel, code.upper(), now),
    ).fetchone()
    if row is None:
        return None
    c.execute("DELETE FROM pairing_requests WHERE channel=? AND code=?", (channel, code.upper()))
    return _pairing(row)


def _audit_decision(
    c: Conn, request: PairingRequest, outcome: str, user_id: str | None, now: float
) -> None:
    data = {"channel": request.channel, "sender_id": request.sender_id, "code": request.code}
    _insert_audit(c, [AuditRecord("pairing", outcome, "ok", user_id, data=data)], now)
