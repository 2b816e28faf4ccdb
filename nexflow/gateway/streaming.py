"""Where a turn's live events go while it runs: the session's open tabs, and a draft in the
chat when the channel's connector can edit one (Telegram, Discord)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nexflow.bus.streams import StreamEvent, StreamHub
from nexflow.orchestrator.steps import StreamSink

DraftFn = Callable[[str, str], Awaitable[None]]  # (chat id, the text so far)
# An inbound event's metadata key: it came from a browser tab's socket, which follows the
# session (GraphStudio's chat). Its turn keeps a live sink even when nobody is subscribed
# yet; other turns (the HTTP API, other channels) stream only to present followers, so
# their model calls are not streamed (and may be cached) when nobody watches.
LIVE_KEY = "stream_live"
LabelFn = Callable[[str, str], str]  # (tool name, arguments) -> the call in plain words


def turn_sink(
    streams: StreamHub,
    draft: DraftFn | None,
    chat_id: str,
    session_id: str,
    label: LabelFn | None = None,
    seen: list[str] | None = None,
    live: bool = False,
) -> StreamSink | None:
    """The turn's sink: WebSocket followers of the session get every event, a drafting
    connector the text so far. None when nobody watches: the model is not asked to
    stream then. ``label`` adds a ``label`` (the call in plain words) to each
    ``tool_call``; ``seen`` collects the streamed text (what a stopped turn keeps).
    ``live``: a tab may open the session while the turn runs (the web: a new conversation's
    tab follows it right after the message is accepted, a reloaded tab comes back), so the
    sink is kept and who watches is looked at on each event."""
    watched = streams.has_subscribers(session_id)
    if not watched and draft is None and not live:
        return None
    text: list[str] = []

    async def sink(e: StreamEvent) -> None:
        if seen is not None and e.get("type") == "token":
            seen.append(str(e.get("text", "")))
        if label is not None and e.get("type") == "tool_call" and "label" not in e:
            e = {**e, "label": label(str(e.get("name", "")), str(e.get("arguments", "")))}
        if watched or (live and streams.has_subscribers(session_id)):
            streams.publish(session_id, e)
        if draft is not None and e.get("type") == "token":
            text.append(str(e.get("text", "")))
            await draft(chat_id, "".join(text))

    return sink
