"""Where a turn's live events go while it runs: the session's open tabs, and a draft in the
chat when the channel's connector can edit one (Telegram, Discord)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nexflow.bus.streams import StreamEvent, StreamHub
from nexflow.orchestrator.steps import StreamSink

DraftFn = Callable[[str, str], Awaitable[None]]  # (chat id, the text so far)


def turn_sink(
    streams: StreamHub, draft: DraftFn | None, chat_id: str, session_id: str
) -> StreamSink | None:
    """The turn's sink: WebSocket followers of the session get every event, a drafting
    connector the text so far. None when nobody watches: the model is not asked to
    stream then."""
    watched = streams.has_subscribers(session_id)
    if not watched and draft is None:
        return None
    text: list[str] = []

    async def sink(e: StreamEvent) -> None:
        if watched:
            streams.publish(session_id, e)
        if draft is not None and e.get("type") == "token":
            text.append(str(e.get("text", "")))
            await draft(chat_id, "".join(text))

    return sink
