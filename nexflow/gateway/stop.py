"""Stopping a running turn (the chat's Stop button): the words a stopped turn ends with
and the frame its tabs get. The mechanics are :meth:`nexflow.gateway.turns.TurnRunner.stop`;
the callers are ``POST /api/v1/sessions/{id}/stop`` and the ``{"type": "stop"}`` frame
of ``/ws/chat``.

A stopped turn is *done*, not failed: its inbox row is answered (never re-run after a
restart, never a dead letter), the history keeps the user's message and the text that
streamed before the stop, followed by :func:`stopped_note`.
"""

from __future__ import annotations

from typing import Any

STOPPED = "stopped"  # the type of the session stream's event
_NOTE = {"en": "(stopped)", "ru": "(остановлено)"}


def stopped_note(lang: str | None) -> str:
    """What a stopped reply ends with, in the session's language."""
    return _NOTE.get(lang or "en", _NOTE["en"])


def stopped_event(inbox_id: int | None) -> dict[str, Any]:
    """The frame a session's tabs get: ``message_id`` is the stopped turn (None: none ran)."""
    return {"type": STOPPED, "message_id": inbox_id}
