"""The fake Discord's vocabulary: API constants, the JSON templates discord.py expects,
records of what the bot did (:class:`SentMessage`), scripted faults (:class:`Failure`),
the error answers Discord gives, and :class:`Changes`, which test waiters watch."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

API = "/api/v10"
DISCORD_EPOCH_MS = 1420070400000
MESSAGE_LIMIT = 2000
ERRORS = {
    401: (0, "401: Unauthorized"),
    403: (50001, "Missing Access"),
    404: (10003, "Unknown Channel"),
    429: (0, "You are being rate limited."),
}

Payload = dict[str, Any]
PERMISSIONS = "1071698660929"  # view, send, embed, attach, read history, ...
JOINED = "2024-01-01T00:00:00+00:00"
USER: Payload = dict(discriminator="0", global_name=None, avatar=None, public_flags=0)
MEMBER: Payload = dict(nick=None, avatar=None, joined_at=JOINED, deaf=False, mute=False, flags=0)
ROLE: Payload = dict(
    color=0, hoist=False, permissions=PERMISSIONS, managed=False, mentionable=True, flags=0
)
CHANNEL: Payload = dict(
    position=0, permission_overwrites=[], nsfw=False, parent_id=None, topic=None,
    last_message_id=None, rate_limit_per_user=0,
)  # fmt: skip
GUILD: Payload = dict(
    icon=None, unavailable=False, large=False, features=[], verification_level=0,
    default_message_notifications=0, explicit_content_filter=0, mfa_level=0, premium_tier=0,
    preferred_locale="en-US", system_channel_id=None, afk_channel_id=None, afk_timeout=300,
    nsfw_level=0, emojis=[], stickers=[], threads=[], voice_states=[], presences=[],
    stage_instances=[], guild_scheduled_events=[], joined_at=JOINED,
)  # fmt: skip
MESSAGE: Payload = dict(
    timestamp=JOINED, edited_timestamp=None, tts=False, mention_everyone=False,
    mention_roles=[], embeds=[], pinned=False, flags=0, components=[],
)  # fmt: skip


@dataclass
class Failure:
    """Let ``after`` matching requests through, then answer the next ``times`` requests
    whose method is ``method`` and whose path contains ``path`` with ``status`` (429
    carries ``retry_after`` in the body and the headers)."""

    status: int
    method: str = "POST"
    path: str = "/messages"
    times: int = 1
    retry_after: float = 1.0
    after: int = 0


@dataclass
class SentMessage:
    """A message the bot created (``POST /channels/{id}/messages``). ``content``,
    ``embeds`` and ``components`` are what it shows now; ``edits`` lists the content of
    every later ``PATCH`` that set one, in order; ``deleted`` after a ``DELETE``."""

    id: str
    channel_id: str
    content: str
    embeds: list[Payload]
    components: list[Payload]
    files: list[tuple[str, bytes]]
    reference: Payload | None
    edits: list[str] = field(default_factory=list)
    deleted: bool = False


@dataclass
class Session:
    """A gateway session: its sequence number and the dispatches a RESUME replays."""

    id: str
    seq: int = 0
    backlog: list[Payload] = field(default_factory=list)


class Changes:
    """Wakes whoever waits in a test after the bot did something."""

    def __init__(self) -> None:
        self._changed = asyncio.Condition()

    async def notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], within_s: float) -> None:
        async with asyncio.timeout(within_s), self._changed:
            await self._changed.wait_for(predicate)


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """JSON with ``Content-Type: application/json`` exactly (discord.py compares it)."""
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def error_response(
    status: int, message: str | None = None, code: int | None = None
) -> web.Response:
    default_code, default_message = ERRORS.get(status, (0, f"{status}: Server Error"))
    return json_response(
        {"message": message or default_message, "code": code or default_code}, status
    )


def invalid_form(field_name: str, error: str, message: str) -> web.Response:
    """Discord's 400 for a body it refuses (code 50035 with the field's error)."""
    errors = {field_name: {"_errors": [{"code": error, "message": message}]}}
    body = {"message": "Invalid Form Body", "code": 50035, "errors": errors}
    return json_response(body, 400)


def failure_response(failure: Failure) -> web.Response:
    if failure.status != 429:
        return error_response(failure.status)
    retry = failure.retry_after
    body = {"message": ERRORS[429][1], "retry_after": retry, "global": False, "code": 0}
    headers = {
        "Retry-After": str(max(1, round(retry))),
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": f"{time.time() + retry:.3f}",
        "X-RateLimit-Reset-After": f"{retry:.3f}",
        "X-RateLimit-Bucket": "fake-bucket",
        "X-RateLimit-Scope": "user",
        "Via": "1.1 google",
    }
    return json_response(body, 429, headers)
