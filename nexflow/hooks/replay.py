"""Replay protection: each verified delivery is remembered in SQLite (table
``webhook_deliveries``), so a repeated one is answered "duplicate" and sent nowhere,
across restarts too.

A delivery is remembered for :func:`keep_seconds`: at least a week (GitHub and GitLab let
people redeliver an old event by hand), and twice the hook's timestamp window.
"""

from __future__ import annotations

from collections.abc import Sequence

from nexflow.storage.base import Hooks

WEEK_S = 7 * 86_400.0


def keep_seconds(window_s: float) -> float:
    return max(WEEK_S, 2 * window_s)


async def first_time(
    store: Hooks, hook: str, keys: Sequence[str], *, now: float, window_s: float
) -> bool:
    """Remember every key of a delivery; True when none of them was seen before. All keys
    are recorded even after a hit, so each later replay matches on any of them."""
    keep_s = keep_seconds(window_s)
    new = [await store.remember_delivery(hook, key, now, keep_s) for key in keys]
    return all(new)
