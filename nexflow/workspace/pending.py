"""What waits to be mirrored in one workspace, and the commit message it becomes.

A :class:`Pending` holds the dirty panels of one workspace (their ids, not their state:
the worker reads the current state from the panel service when it commits) and a bounded
account of the changes: who made each, a count per panel and label (``add_item ×3``),
and the first :data:`MAX_LINES` full descriptions. However long the mirror falls behind,
a workspace costs one entry per panel it has, a few counters and at most
:data:`MAX_LINES` lines.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

MAX_LINES = 50  # full change lines kept per commit; the rest are counted
MAX_ACTORS = 10  # distinct "by ..." names kept per commit


@dataclass(frozen=True, slots=True)
class Note:
    """One change: ``label`` is short (a tool name, ``create``), ``line`` the whole
    story (``todo: add_item(text='x') by u1``), ``actor`` who (``the AI for u1``),
    ``author`` the git author."""

    panel: str
    label: str
    line: str
    actor: str
    author: str


@dataclass
class Pending:
    owner: str
    panels: dict[str, None] = field(default_factory=dict)  # ordered set
    labels: dict[str, Counter[str]] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    actors: dict[str, None] = field(default_factory=dict)
    authors: dict[str, None] = field(default_factory=dict)
    count: int = 0
    more_actors: bool = False

    def add(self, note: Note) -> None:
        self.panels[note.panel] = None
        self.labels.setdefault(note.panel, Counter())[note.label] += 1
        if len(self.lines) < MAX_LINES:
            self.lines.append(note.line)
        self._actor(note.actor)
        if len(self.authors) < 2:
            self.authors[note.author] = None
        self.count += 1

    def _actor(self, actor: str) -> None:
        if actor in self.actors or len(self.actors) < MAX_ACTORS:
            self.actors[actor] = None
        else:
            self.more_actors = True

    def merge(self, newer: Pending) -> None:
        """Fold ``newer`` (recorded after this one) in: a failed commit is retried
        together with what came later."""
        self.panels.update(newer.panels)
        for panel, counts in newer.labels.items():
            self.labels.setdefault(panel, Counter()).update(counts)
        self.lines.extend(newer.lines[: MAX_LINES - len(self.lines)])
        for actor in newer.actors:
            self._actor(actor)
        self.more_actors = self.more_actors or newer.more_actors
        for author in newer.authors:
            if len(self.authors) < 2:
                self.authors[author] = None
        self.count += newer.count

    def author(self, owner_author: str) -> str:
        """The one author of every change, else the workspace owner."""
        return next(iter(self.authors)) if len(self.authors) == 1 else owner_author

    def message(self) -> str:
        """One change: its line. More: a subject naming every panel's changes and who
        made them, then the lines (``… and N more`` past :data:`MAX_LINES`)."""
        if self.count == 1:
            return self.lines[0]
        parts = []
        for panel, counts in self.labels.items():
            labels = ", ".join(f"{k} ×{n}" if n > 1 else k for k, n in counts.items())
            parts.append(f"{panel}: {labels}")
        actors = ", ".join(self.actors) + (" and others" if self.more_actors else "")
        subject = "; ".join(parts) + " by " + actors
        body = list(self.lines)
        if self.count > len(self.lines):
            body.append(f"… and {self.count - len(self.lines)} more")
        return subject + "\n\n" + "\n".join(body)
