"""What the context pager remembers of a session between turns: its unpaged window.

Per session (a bounded LRU of :data:`KNOWN_SESSIONS`), the cut (the last paged-out message
id), whether pages exist, the messages after the cut as last read (the *window*), their
estimated tokens and the last message id in it. Each turn the pager reads only the
messages written since ``last_id``, appends them and adds their tokens (the same
per-message estimate, so the sum is exact, never a guess); it never re-reads or re-counts
the window. A page-out replaces the window with what was kept. A session not in the LRU
(after a restart, or evicted) is read in full once. Messages are append-only (the storage
API neither edits nor deletes them), so a window stays true until the pager itself pages
out. See docs/memory.md, "A turn under the budget costs almost nothing".
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from nexflow.memory.transcript import message_tokens
from nexflow.storage.base import MessageRecord

# Sessions whose window is kept in memory (LRU). A window is at most about half the
# context budget (plus the newest exchange when that alone is bigger): at the default
# 8,000 tokens, 30-70 kB for messages of ordinary length, ~300 kB at worst (~700 one-word
# messages at ~450 bytes each), so 128 windows stay under 40 MB even then.
KNOWN_SESSIONS = 128


@dataclass(slots=True)
class Estimate:
    """What the pager last read of a session: ``window`` holds the messages
    ``cut < id <= last_id`` (oldest first, none paged out) and they take ``tokens``
    (exactly :func:`message_tokens` summed, not a guess). ``window`` is the pager's own
    list: it is appended to in place and must not be handed out."""

    cut: int
    pages: bool
    tokens: int
    last_id: int
    window: list[MessageRecord]


class SessionEstimates:
    """The LRU of :class:`Estimate` by session id; ``max_load`` is the pager's read limit
    (a read, or a window, that reaches it may be cut short, so it is not kept)."""

    def __init__(self, max_load: int, capacity: int = KNOWN_SESSIONS) -> None:
        self._max_load = max_load
        self._capacity = capacity
        self._known: OrderedDict[str, Estimate] = OrderedDict()

    def __len__(self) -> int:
        return len(self._known)

    def get(self, session_id: str) -> Estimate | None:
        return self._known.get(session_id)

    def forget(self, session_id: str) -> Estimate | None:
        """Drop the session's estimate (the next turn reads it in full); returns it."""
        return self._known.pop(session_id, None)

    def remember(
        self, session_id: str, cut: int, pages: bool, recent: list[MessageRecord], tokens: int
    ) -> None:
        """``recent``: the messages after ``cut`` as read, taking ``tokens`` in all. The list
        becomes the estimate's window (it is not copied: the caller hands it over)."""
        self._known.pop(session_id, None)
        if len(recent) >= self._max_load:  # the read was cut short: the estimate would be low
            return
        last_id = recent[-1].id if recent else cut
        self._known[session_id] = Estimate(cut, pages, tokens, last_id, recent)
        if len(self._known) > self._capacity:
            self._known.popitem(last=False)

    def catch_up(
        self, session_id: str, after_id: int, new: Sequence[MessageRecord]
    ) -> Estimate | None:
        """Append ``new`` (the messages with id > ``after_id``, as read) to the window and
        add their tokens. None, and the session forgotten, when it is not known, its
        ``last_id`` is no longer ``after_id``, or the window would reach ``max_load``
        (a full read would be cut short there: the caller reads in full instead)."""
        known = self._known.get(session_id)
        if known is None:
            return None
        if known.last_id != after_id or len(known.window) + len(new) >= self._max_load:
            self.forget(session_id)
            return None
        if new:
            known.window.extend(new)
            known.tokens += sum(message_tokens(m) for m in new)
            known.last_id = new[-1].id
        self._known.move_to_end(session_id)
        return known
