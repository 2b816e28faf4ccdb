"""The user's own Markdown files that go into the system prompt.

In the user's memory folder (``<workspace>/memory/<user id>/``), all optional and edited by
hand: ``USER.md`` (who the user is), ``RULES.md`` (rules the assistant always follows),
``SKILL_HINTS.md`` (a ``## <skill name>`` section per skill) or ``hints/<skill name>.md``
(a skill's hint goes in only while that skill is in the prompt's skill index or used in
the conversation), ``MEMORY.md`` (durable facts) and the daily notes of today and
yesterday. Each file is cut at ``memory.prompt_file_chars``. Without any of these files
the prompt is unchanged.

Each turn checks the files in a worker thread, never on the event loop: a few ``stat``
calls, and a file is re-read only when its mtime or size changed since the user's last
turn, so an edit reaches the very next turn. The last snapshot of up to
:data:`KEEP_USERS` users is kept.
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from nexflow.memory import notes

PROFILE_FILE = "USER.md"
RULES_FILE = "RULES.md"
HINTS_FILE = "SKILL_HINTS.md"
HINTS_DIR = "hints"
KEEP_USERS = 1024  # snapshots kept (least recently used dropped: that user reads again)
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")

Stamp = tuple[int, int]  # mtime_ns, size


@dataclass(frozen=True, slots=True)
class _Files:
    profile: str = ""
    rules: str = ""
    memory: str = ""
    notes: tuple[tuple[str, str], ...] = ()
    hints: dict[str, str] = field(default_factory=dict)  # lower-case skill name → hint


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """A user's files as last read: each file's stamp and text, and what they make."""

    stamps: dict[Path, Stamp] = field(default_factory=dict)
    texts: dict[Path, str] = field(default_factory=dict)
    files: _Files = field(default_factory=_Files)


def parse_hints(text: str) -> dict[str, str]:
    """``## skill-name`` sections of SKILL_HINTS.md; text before the first heading is ignored."""
    hints: dict[str, str] = {}
    name: str | None = None
    body: list[str] = []

    def flush() -> None:
        if name is not None and "\n".join(body).strip():
            hints[name.lower()] = "\n".join(body).strip()

    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            flush()
            name, body = heading.group(1).strip().strip("`"), []
        else:
            body.append(line)
    flush()
    return hints


class UserFiles:
    """The prompt section made of a user's own files (see the module docstring)."""

    def __init__(
        self,
        workspace: Path,
        max_chars: int = 2_000,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
    ) -> None:
        self._workspace = workspace
        self._max = max_chars
        self._today = today
        self._snapshots: OrderedDict[str, _Snapshot] = OrderedDict()

    def _paths(self, folder: Path) -> list[Path]:
        day = self._today()
        names = [
            PROFILE_FILE,
            RULES_FILE,
            HINTS_FILE,
            notes.MEMORY_FILE,
            f"{(day - timedelta(days=1)).isoformat()}.md",
            f"{day.isoformat()}.md",
        ]
        paths = [folder / name for name in names]
        hints = folder / HINTS_DIR
        if hints.is_dir():
            paths += sorted(p for p in hints.iterdir() if p.suffix == ".md")
        return paths

    def _read(self, user_id: str, previous: _Snapshot | None) -> _Snapshot:
        """The user's files now (blocking: :meth:`section` runs it in a worker thread).

        Files whose mtime and size did not change keep the text read before.
        """
        folder = notes.user_dir(self._workspace, user_id)
        try:
            paths = self._paths(folder) if folder.is_dir() else []
        except OSError:  # the folder went away while it was listed
            paths = []
        before = previous or _Snapshot()
        stamps: dict[Path, Stamp] = {}
        texts: dict[Path, str] = {}
        for path in paths:
            try:
                st = path.stat()
                stamp = (st.st_mtime_ns, st.st_size)
                text = before.texts.get(path) if before.stamps.get(path) == stamp else None
                if text is None:
                    text = path.read_text(encoding="utf-8", errors="replace").strip()
            except OSError:  # missing (the usual case), or gone between stat and read
                continue
            stamps[path], texts[path] = stamp, text
        if previous is not None and stamps == previous.stamps:
            return previous
        return _Snapshot(stamps, texts, _files(texts))

    async def section(self, user_id: str, skills: Callable[[], Collection[str]] = frozenset) -> str:
        """The prompt section for ``user_id`` ("" when they have none of the files).

        ``skills`` is called only when the user has hints: the names of the skills in the
        prompt's index or used in the conversation.
        """
        if self._max == 0:
            return ""
        previous = self._snapshots.pop(user_id, None)
        snapshot = await asyncio.to_thread(self._read, user_id, previous)
        self._snapshots[user_id] = snapshot
        if len(self._snapshots) > KEEP_USERS:
            self._snapshots.popitem(last=False)
        files = snapshot.files
        parts: list[str] = []
        if files.profile:
            parts.append(f"## About the user (USER.md)\n{self._head(files.profile)}")
        if files.rules:
            parts.append(
                f"## The user's rules (RULES.md) — always follow them\n{self._head(files.rules)}"
            )
        if files.hints:
            wanted = {name.lower() for name in skills()}
            chosen = [(n, h) for n, h in sorted(files.hints.items()) if n in wanted]
            if chosen:
                body = "\n".join(f"### {n}\n{h}" for n, h in chosen)
                parts.append(f"## Skill hints from the user\n{self._head(body)}")
        if files.memory:
            parts.append(f"## Long-term memory (MEMORY.md)\n{self._head(files.memory)}")
        for name, text in files.notes:
            parts.append(f"## Notes ({name})\n{self._tail(text)}")
        return "\n\n".join(parts)

    def _head(self, text: str) -> str:
        if len(text) <= self._max:
            return text
        return text[: self._max].rstrip() + "\n(cut here; the file is longer)"

    def _tail(self, text: str) -> str:
        if len(text) <= self._max:
            return text
        return "(earlier lines cut; memory_search finds them)\n" + text[-self._max :].lstrip()


def _files(texts: dict[Path, str]) -> _Files:
    hints: dict[str, str] = {}
    single: dict[str, str] = {}
    daily: list[tuple[str, str]] = []
    for path, text in texts.items():
        if path.parent.name == HINTS_DIR:
            if text:
                hints[path.stem.lower()] = text
        elif path.name == HINTS_FILE:
            hints = {**parse_hints(text), **hints}
        elif path.name in (PROFILE_FILE, RULES_FILE, notes.MEMORY_FILE):
            single[path.name] = text
        elif text:
            daily.append((path.name, text))
    return _Files(
        single.get(PROFILE_FILE, ""),
        single.get(RULES_FILE, ""),
        single.get(notes.MEMORY_FILE, ""),
        tuple(daily),
        hints,
    )
