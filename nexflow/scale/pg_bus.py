"""The event bus on Postgres ``LISTEN/NOTIFY`` (contract in :mod:`nexflow.scale.bus`).

Two connections of its own per replica, both async psycopg: one publishes
(``pg_notify``), one listens. Not the storage engine's thread: a token stream must not
queue behind storage transactions, and the listener blocks on the socket all the time.

- **Channel names**: a Postgres channel name is an identifier of at most 63 bytes, so a
  bus channel maps to ``nxbus_`` and 32 hex digits of its BLAKE2b hash.
- **Payloads over the 8000-byte NOTIFY limit are chunked**, not stored in a table: the
  JSON (ASCII-escaped, so bytes are characters) is cut into frames of at most
  ``FRAME_BYTES``, sent in one transaction (Postgres delivers a transaction's
  notifications together, in order) and put back together by the reader before it is
  delivered. No table to sweep, no extra round trip on the reading side, and order per
  publisher holds because a message is delivered when its last frame arrives. Frames are
  ``m<json>`` (whole) or ``c<id>:<index>:<count>|<piece>``; payloads above
  ``max_payload`` (1 MiB by default) are refused (:class:`PayloadTooLarge`).
- **Listening to a new channel** interrupts the reader (psycopg's ``notifies()`` holds
  the connection), runs ``LISTEN``, and resumes it; notifications that came in meanwhile
  wait in psycopg's backlog, none are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import structlog

from nexflow.backoff import Backoff
from nexflow.scale.bus import DEFAULT_QUEUE_SIZE, Hub, Payload, encode
from nexflow.scale.errors import PayloadTooLarge, ScaleUnavailable
from nexflow.storage.engine import redact

log = structlog.get_logger("nexflow.scale.bus")

FRAME_BYTES = 7900  # under NOTIFY's 8000-byte payload limit, with room for the header
DEFAULT_BACKOFF = Backoff(base_s=0.2, cap_s=10.0, jitter=0.5)
_MAX_ASSEMBLIES = 64


def pg_channel(channel: str) -> str:
    return "nxbus_" + hashlib.blake2b(channel.encode(), digest_size=16).hexdigest()


class PostgresBus(Hub):
    """``LISTEN/NOTIFY`` on the storage database (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        name: str = "nexflow",
        queue_size: int = DEFAULT_QUEUE_SIZE,
        max_payload: int = 1 << 20,
        ready_timeout_s: float = 10.0,
        backoff: Backoff = DEFAULT_BACKOFF,
    ) -> None:
        super().__init__(queue_size)
        self._url = url
        self._name = name
        self.max_payload = max_payload
        self._ready_timeout_s = ready_timeout_s
        self._backoff = backoff
        self._publisher: Any = None
        self._publish_lock = asyncio.Lock()
        self._names: dict[str, str] = {}  # Postgres channel -> bus channel
        self._listening: set[str] = set()  # Postgres channels LISTENed on the live connection
        self._waiters: dict[str, asyncio.Future[None]] = {}
        self._wake = asyncio.Event()
        self._assemblies: OrderedDict[str, list[str | None]] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self._listener: Any = None

    @property
    def listener_name(self) -> str:
        """The listening connection's ``application_name`` (ops, tests)."""
        return f"{self._name} bus listen"[:63]

    async def open(self) -> None:
        self._publisher = await self._connect(f"{self._name} bus publish")
        listener = await self._connect(self.listener_name)
        self._task = asyncio.create_task(self._run(listener), name="pg-bus-listener")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            await publisher.close()
        for waiter in self._waiters.values():
            waiter.cancel()
        self._close_all()

    async def publish(self, channel: str, payload: Mapping[str, Any]) -> None:
        import psycopg

        frames = self._frames(payload)
        target = pg_channel(channel)
        async with self._publish_lock:
            try:
                if self._publisher is None or self._publisher.closed:
                    self._publisher = await self._connect(f"{self._name} bus publish")
                conn = self._publisher
                if len(frames) == 1:
                    await conn.execute("SELECT pg_notify(%s, %s)", (target, frames[0]))
                else:
                    async with conn.transaction(), conn.cursor() as cur:
                        await cur.executemany(
                            "SELECT pg_notify(%s, %s)", [(target, f) for f in frames]
                        )
            except psycopg.Error as exc:
                raise ScaleUnavailable(f"bus publish failed: {exc}") from exc

    def _frames(self, payload: Mapping[str, Any]) -> list[str]:
        text = encode(payload)
        if len(text.encode()) < FRAME_BYTES:
            return ["m" + text]
        text = encode(payload, ascii_only=True)
        if len(text) > self.max_payload:
            raise PayloadTooLarge(
                f"bus payload of {len(text)} bytes is above the limit ({self.max_payload})"
            )
        msg_id = uuid.uuid4().hex
        pieces = [text[i : i + FRAME_BYTES] for i in range(0, len(text), FRAME_BYTES)]
        return [f"c{msg_id}:{i}:{len(pieces)}|{p}" for i, p in enumerate(pieces)]

    async def _listen(self, channel: str) -> None:
        target = pg_channel(channel)
        self._names[target] = channel
        if target in self._listening:
            return
        waiter = self._waiters.get(target)
        if waiter is None:
            waiter = self._waiters[target] = asyncio.get_running_loop().create_future()
        self._wake.set()
        try:
            async with asyncio.timeout(self._ready_timeout_s):
                await asyncio.shield(waiter)
        except TimeoutError as exc:
            raise ScaleUnavailable(
                f"bus: not listening on {channel!r} yet (Postgres down?)"
            ) from exc

    async def _unlisten(self, channel: str) -> None:
        self._wake.set()

    async def _connect(self, application_name: str) -> Any:
        import psycopg

        try:
            return await psycopg.AsyncConnection.connect(
                self._url, autocommit=True, application_name=application_name[:63]
            )
        except psycopg.Error as exc:
            raise ScaleUnavailable(f"cannot connect to {redact(self._url)}: {exc}") from exc

    async def _run(self, conn: Any) -> None:
        try:
            await self._supervise(conn)
        finally:
            if self._listener is not None:
                with contextlib.suppress(Exception):  # closing on the way out
                    await self._listener.close()
            self._listener = None

    async def _supervise(self, conn: Any) -> None:
        """Listen; when the connection is lost, mark the gap and connect again."""
        import psycopg

        failures = 0
        while True:
            if conn is None:
                try:
                    conn = await self._connect(self.listener_name)
                except ScaleUnavailable as exc:
                    failures += 1
                    delay = self._backoff.delay(failures)
                    log.warning("bus_reconnect_failed", backend="postgres", error=str(exc))
                    await asyncio.sleep(delay)
                    continue
                log.info("bus_reconnected", backend="postgres", after_attempts=failures)
                failures = 0
            self._listener = conn
            try:
                await self._serve(conn)
            except (psycopg.Error, ScaleUnavailable, OSError) as exc:
                log.warning(
                    "bus_connection_lost",
                    backend="postgres",
                    error=str(exc),
                    note="reconnecting; messages published until then are lost",
                )
                self._listening.clear()
                self._assemblies.clear()
                self._gap_all("the connection to Postgres was lost")
                with contextlib.suppress(Exception):  # it is broken already
                    await conn.close()
                conn = None
                failures += 1
                await asyncio.sleep(self._backoff.delay(failures))

    async def _serve(self, conn: Any) -> None:
        from psycopg import sql

        while True:
            self._wake.clear()
            wanted = {pg_channel(c) for c in self._subs}
            for target in sorted(wanted - self._listening):
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(target)))
                self._listening.add(target)
            for target in sorted(self._listening - wanted):
                # Forgotten before the await: a subscriber arriving meanwhile waits for
                # the next round, which LISTENs again.
                self._listening.discard(target)
                await conn.execute(sql.SQL("UNLISTEN {}").format(sql.Identifier(target)))
            wanted = {pg_channel(c) for c in self._subs}
            for target in [t for t in self._names if t not in wanted]:
                del self._names[target]
            for target in [t for t in self._waiters if t in self._listening]:
                waiter = self._waiters.pop(target)
                if not waiter.done():
                    waiter.set_result(None)
            reader = asyncio.create_task(self._read(conn))
            woken = asyncio.create_task(self._wake.wait())
            try:
                await asyncio.wait({reader, woken}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                reader.cancel()
                woken.cancel()
                await asyncio.gather(reader, woken, return_exceptions=True)
            if not reader.cancelled() and (error := reader.exception()) is not None:
                raise error

    async def _read(self, conn: Any) -> None:
        async with contextlib.aclosing(conn.notifies()) as notifies:
            async for note in notifies:
                self._on_frame(note.channel, note.payload)
        raise ScaleUnavailable("the notification stream ended")

    def _on_frame(self, target: str, frame: str) -> None:
        channel = self._names.get(target)
        if channel is None:
            return
        try:
            payload = self._decode(frame)
        except ValueError:
            log.warning("bus_bad_frame", backend="postgres", channel=channel, frame=frame[:80])
            return
        if payload is not None:
            self._deliver(channel, payload)

    def _decode(self, frame: str) -> Payload | None:
        if frame.startswith("m"):
            return _object(frame[1:])
        if not frame.startswith("c"):
            raise ValueError("unknown frame")
        header, sep, piece = frame[1:].partition("|")
        msg_id, index_text, count_text = header.split(":")
        index, count = int(index_text), int(count_text)
        if not sep or not 0 <= index < count or count > self.max_payload // FRAME_BYTES + 1:
            raise ValueError("bad chunk header")
        parts = self._assemblies.get(msg_id)
        if parts is None:
            parts = self._assemblies[msg_id] = [None] * count
            while len(self._assemblies) > _MAX_ASSEMBLIES:  # publishers that died mid-way
                self._assemblies.popitem(last=False)
        parts[index] = piece
        if any(p is None for p in parts):
            return None
        del self._assemblies[msg_id]
        return _object("".join(p for p in parts if p is not None))


def _object(text: str) -> Payload:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value
