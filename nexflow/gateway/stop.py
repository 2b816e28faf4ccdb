"""Stopping a running turn (the chat's Stop button): the words a stopped turn ends with
and the frame its tabs get. The mechanics are :meth:`nexflow.gateway.turns.TurnRunner.stop`;
the callers are ``POST /api/v1/sessions/{id}/stop`` and the ``{"type": "stop"}`` frame
of ``/ws/chat``.

A stopped turn is *done*, not failed: its inbox row is answered (never re-run after a
restart, never a dead letter), the history keeps the user's message and the text that
streamed before the stop, followed by :func:`stopped_note`.

A Stop stops the turn running now; turns queued behind it in the session run next (a
Stop with none running answers "nothing stopped" at once).

Replicas: a Stop received by a replica that does not hold the session's lease reaches the
one that does over the bus (:class:`RemoteStops`); that replica answers as one gateway
would: the turn running there is stopped, and with its turns only queued there, nothing
is (at once, not after the asker's timeout). With no live lease nothing runs anywhere, and
the asking replica answers at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog

from nexflow.scale.bus import EventBus
from nexflow.scale.errors import MessagesLost, ScaleUnavailable
from nexflow.storage.base import SessionRecord, StorageError

log = structlog.get_logger("nexflow.gateway.stop")

CHANNEL = "stop"  # the bus channel of stop requests across replicas
ANSWER_S = 2.0  # how long an asker waits for the replica running the turn
READY_TIMEOUT_S = 5.0
RETRY_S = 1.0
STOPPED = "stopped"  # the type of the session stream's event
_NOTE = {"en": "(stopped)", "ru": "(остановлено)"}


def stopped_note(lang: str | None) -> str:
    """What a stopped reply ends with, in the session's language."""
    return _NOTE.get(lang or "en", _NOTE["en"])


def stopped_event(inbox_id: int | None) -> dict[str, Any]:
    """The frame a session's tabs get: ``message_id`` is the stopped turn (None: none ran)."""
    return {"type": STOPPED, "message_id": inbox_id}


class RemoteStops:
    """A Stop pressed on one replica for a turn running on another (storage on Postgres).

    Every replica listens on the bus channel ``stop``. A replica asked to stop a session
    whose turn does not run here publishes ``{"op": "stop", "id", "s": session, "u":
    user, "o": origin}``; the replica running it checks, from storage, that the session
    is the user's (the bus is not trusted with that), stops the turn as a local Stop
    does and answers ``{"op": "stopped", "id", "to": origin, "m": inbox id or None}``
    (None: refused, nothing runs there now, or it was already storing its reply). Only
    the replica ``answers(session)`` is true on (the lease holder) answers. The asker
    takes the first answer, or None after ``answer_s`` (the holder died or the bus is
    down). One channel, not one per session: a replica
    LISTENs once, not once per turn; requests are rare.
    """

    def __init__(
        self,
        bus: EventBus,
        stop_local: Callable[[str], int | None],
        answers: Callable[[str], bool],
        session_of: Callable[[str], Awaitable[SessionRecord | None]],
        *,
        origin: str | None = None,
        answer_s: float = ANSWER_S,
    ) -> None:
        self._bus = bus
        self._stop_local = stop_local
        self._answers = answers
        self._session_of = session_of
        self.origin = origin or uuid.uuid4().hex
        self._answer_s = answer_s
        self._asked: dict[str, asyncio.Future[int | None]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        ready = asyncio.Event()
        self._task = asyncio.create_task(self._listen(ready), name="remote-stops")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(READY_TIMEOUT_S):
                await ready.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for fut in self._asked.values():
            fut.cancel()

    async def request(self, session_id: str, user_id: str) -> int | None:
        """Ask the replica running ``session_id``'s turn to stop it for ``user_id``; the
        inbox id of the stopped turn, or None (refused, none ran, no answer in time)."""
        rid = uuid.uuid4().hex
        fut: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._asked[rid] = fut
        request = {"op": "stop", "id": rid, "s": session_id, "u": user_id, "o": self.origin}
        try:
            await self._bus.publish(CHANNEL, request)
            return await asyncio.wait_for(fut, self._answer_s)
        except (TimeoutError, ScaleUnavailable):
            log.info("remote_stop_unanswered", session_id=session_id)
            return None
        finally:
            self._asked.pop(rid, None)

    async def _listen(self, ready: asyncio.Event) -> None:
        while True:
            try:
                async with self._bus.subscribe(CHANNEL) as sub:
                    ready.set()
                    while True:
                        try:
                            async for payload in sub:
                                await self._on(payload)
                            return  # the bus closed
                        except MessagesLost as exc:  # an asker gets no answer: it times out
                            log.info("remote_stop_gap", reason=exc.reason)
            except ScaleUnavailable as exc:
                log.warning("remote_stop_listen_failed", error=str(exc))
                ready.set()
                await asyncio.sleep(RETRY_S)

    async def _on(self, payload: Mapping[str, Any]) -> None:
        rid = payload.get("id")
        if not isinstance(rid, str):
            return
        if payload.get("op") == "stopped":
            fut = self._asked.get(rid)
            inbox_id = payload.get("m")
            if payload.get("to") == self.origin and fut is not None and not fut.done():
                fut.set_result(inbox_id if isinstance(inbox_id, int) else None)
            return
        session_id, user_id, asker = payload.get("s"), payload.get("u"), payload.get("o")
        if payload.get("op") != "stop" or asker == self.origin:
            return
        if not isinstance(session_id, str) or not isinstance(user_id, str):
            return
        if not isinstance(asker, str) or not self._answers(session_id):
            return
        try:
            session = await self._session_of(session_id)
        except StorageError:
            log.warning("remote_stop_owner_unknown", session_id=session_id, exc_info=True)
            return
        if session is None or session.user_id != user_id:
            log.warning("remote_stop_refused", session_id=session_id, user_id=user_id)
            stopped = None
        else:
            stopped = self._stop_local(session_id)
        answer = {"op": "stopped", "id": rid, "to": asker, "m": stopped}
        with contextlib.suppress(ScaleUnavailable):
            await self._bus.publish(CHANNEL, answer)
