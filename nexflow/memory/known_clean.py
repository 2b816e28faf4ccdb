"""Keys (users, sessions) known to have nothing pending, so the pager need not ask memory.db.

The context pager retries a missed flush per user and embeds new pages per session after
every turn; asking memory.db each time would cost a query per turn. A key in
:class:`KnownClean` was answered "nothing pending" and is not asked again until something
marks it :meth:`~KnownClean.dirty`. A key never seen (after a restart) is asked once.
"""

from __future__ import annotations

KNOWN_CLEAN = 10_000  # keys remembered as having nothing pending; past it, all are forgotten


class KnownClean:
    """Keys known to have nothing pending. A key not in it is asked about (after a restart,
    once); :meth:`dirty` bumps an epoch so an answer computed before it is not trusted.

    Use: ``since = clean.epoch``, ask memory.db, then ``clean.clean(key, since)`` if the
    answer was "nothing"; anything that makes work pending calls ``clean.dirty(key)``.
    """

    def __init__(self, capacity: int = KNOWN_CLEAN) -> None:
        self._keys: set[str] = set()
        self._capacity = capacity
        self.epoch = 0

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def dirty(self, key: str) -> None:
        self._keys.discard(key)
        self.epoch += 1

    def clean(self, key: str, since: int) -> None:
        if self.epoch != since:  # something went pending meanwhile: ask again next time
            return
        if len(self._keys) >= self._capacity:
            self._keys.clear()  # forgetting only costs a query
        self._keys.add(key)
