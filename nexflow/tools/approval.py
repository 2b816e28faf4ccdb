"""Approvals inside a durable turn: ask once, park, resume with the answer.

A chat turn never waits for a person. When a tool (or the trust gate) calls
``ctx.confirm(title, detail)`` and the user has not answered *this exact call* yet,
:meth:`TurnApprovals.confirm` raises :class:`~nexflow.tools.base.ApprovalRequired`; the
turn runner stores the turn and releases its worker. When the user answers, the turn is
resumed with the decisions keyed by :func:`call_key` (the tool's name and its exact
arguments), and the same call now gets its answer without asking again. Every confirm
inside one call (the gate's and the tool's own) shares the call's key, so a call is
asked about once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from nexflow.tools.base import ApprovalRequired


def call_key(name: str, arguments: str | Mapping[str, Any]) -> str:
    """A stable key for one call: the tool's name and its arguments, canonicalised."""
    if isinstance(arguments, str):
        with contextlib.suppress(ValueError):  # not JSON: the raw text is the key
            arguments = json.loads(arguments or "{}")
    canonical = (
        arguments
        if isinstance(arguments, str)
        else json.dumps(arguments, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    )
    return hashlib.sha256(f"{name}\0{canonical}".encode()).hexdigest()


class TurnApprovals:
    """The decisions a resumed turn carries, and the key of the call running now."""

    def __init__(self, decisions: Mapping[str, bool] | None = None) -> None:
        self._decisions = dict(decisions or {})
        self.current = ""
        self.used: set[str] = set()

    def bind(self, key: str) -> None:
        self.current = key

    async def confirm(self, title: str, detail: str) -> bool:
        key = self.current
        if key in self._decisions:
            self.used.add(key)
            return self._decisions[key]
        raise ApprovalRequired(title, detail)
