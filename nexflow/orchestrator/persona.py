"""Persona files from the workspace: ``USER.md`` and ``WORKSPACE.md``, re-read when changed."""

from __future__ import annotations

import time
from pathlib import Path

PERSONA_FILES = ("USER.md", "WORKSPACE.md")


class PersonaFiles:
    """Reads the persona files at most every ``check_interval_s`` seconds (stat, then read)."""

    def __init__(
        self, workspace: Path, max_chars: int = 4_000, check_interval_s: float = 2.0
    ) -> None:
        self._workspace = workspace
        self._max_chars = max_chars
        self._interval = check_interval_s
        self._checked = 0.0
        self._stamp: tuple[float, ...] = ()
        self._text = ""

    def text(self) -> str:
        now = time.monotonic()
        if now - self._checked < self._interval:
            return self._text
        self._checked = now
        paths = [self._workspace / name for name in PERSONA_FILES]
        stamp = tuple(p.stat().st_mtime if p.is_file() else 0.0 for p in paths)
        if stamp != self._stamp:
            self._stamp = stamp
            sections = []
            for path in paths:
                if path.is_file():
                    body = path.read_text(encoding="utf-8", errors="replace").strip()
                    if body:
                        sections.append(f"## {path.name}\n{body[: self._max_chars]}")
            self._text = "\n\n".join(sections)
        return self._text
