"""The Markdown side of memory: files the user reads and edits.

Each user has a folder ``<workspace>/memory/<user_id>/`` holding ``MEMORY.md`` (durable
facts, written by hand) and daily notes ``YYYY-MM-DD.md`` (``memory_save`` appends a bullet
to today's). The files are the source of truth: the database is an index over them.

A file is split into *chunks*: every bullet (``- `` or ``* ``, with its indented
continuation lines) and every other paragraph; headings are not chunks. ``#word`` marks a
tag. All functions here are synchronous; the service runs them in its database thread.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

MEMORY_FILE = "MEMORY.md"
_NOTE_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}\.md$")
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TAG = re.compile(r"(?<![\w#])#([\w-]+)")
_BULLET = re.compile(r"^[-*]\s+")


@dataclass(frozen=True, slots=True)
class Chunk:
    text: str
    tags: tuple[str, ...]

    @property
    def digest(self) -> str:
        return hashlib.blake2b(self.text.encode(), digest_size=12).hexdigest()


def user_dir(workspace: Path, user_id: str) -> Path:
    """The user's memory folder; ids that are not plain names are hashed."""
    name = user_id if _SAFE_ID.match(user_id) else hashlib.sha256(user_id.encode()).hexdigest()
    return workspace / "memory" / name


def memory_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and (p.name == MEMORY_FILE or _NOTE_NAME.match(p.name))
    )


def parse(text: str) -> list[Chunk]:
    chunks: list[Chunk] = []
    current: list[str] = []

    def flush() -> None:
        body = "\n".join(current).strip()
        current.clear()
        if body:
            chunks.append(Chunk(body, tuple(dict.fromkeys(_TAG.findall(body)))))

    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("# ") or re.match(r"^#{2,6}\s", stripped):
            flush()
        elif _BULLET.match(line):
            flush()
            current.append(_BULLET.sub("", line, count=1))
        else:
            current.append(stripped)
    flush()
    return chunks


def append_note(folder: Path, day: date, text: str, tags: list[str]) -> tuple[Path, Chunk]:
    """Append one bullet to the day's note (creating it with a heading); return its chunk."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{day.isoformat()}.md"
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    missing = [t for t in tags if f"#{t}" not in text]
    if missing:
        lines[-1] += " " + " ".join(f"#{t}" for t in missing)
    bullet = "- " + "\n  ".join(lines) + "\n"
    with path.open("a", encoding="utf-8") as out:
        if out.tell() == 0:
            out.write(f"# {day.isoformat()}\n\n")
        out.write(bullet)
    return path, parse(bullet)[0]
