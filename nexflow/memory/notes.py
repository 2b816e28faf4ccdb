"""The Markdown side of memory: files the user reads and edits.

Each user has a folder ``<workspace>/memory/<user_id>/`` holding ``MEMORY.md`` (durable
facts, written by hand) and daily notes ``YYYY-MM-DD.md`` (``memory_save`` appends a bullet
to today's). The files are the source of truth: the database is an index over them.

A file is split into *chunks*: every bullet (``- `` or ``* ``, with its indented
continuation lines) and every other paragraph; headings are not chunks. ``#word`` marks a
tag. All functions here are synchronous; the service runs them in its database thread.

Taint (docs/trust.md). A fact saved in a turn that had read untrusted content ends with
``<!-- tainted: http-request, ... -->`` (an HTML comment: invisible when the note is
rendered, plain to whoever edits it). The mark lives in the file, so the index rebuilt
from the files keeps it; a chunk with a mark is :attr:`Chunk.tainted`, and deleting the
mark by hand is how a user vouches for a fact. Continuation lines of a saved fact that
look like headings are escaped (``\\#``), so a saved fact stays one chunk with its mark.

Keys. A fact a flow step saved ends with ``<!-- key: <run>:<node>:<attempt> -->``, the
step's idempotency key, on the fact's own line (it is in the file exactly when the fact
is): a step that runs again after a crash finds it (:func:`find_key`) and does not append
the fact a second time. Like the taint mark it is not part of the chunk's text.
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
_HEADING = re.compile(r"^#{1,6}\s")
_TAINT_MARK = re.compile(r"[ \t]*<!--\s*tainted:\s*(.*?)\s*-->", re.DOTALL)
_SOURCE = re.compile(r"[^\w.:-]+")
_KEY_MARK = re.compile(r"[ \t]*<!--\s*key:\s*[\w.:-]*\s*-->")


@dataclass(frozen=True, slots=True)
class Chunk:
    text: str
    tags: tuple[str, ...]
    tainted: tuple[str, ...] = ()  # where untrusted content came from; empty: clean

    @property
    def digest(self) -> str:
        body = self.text if not self.tainted else f"{self.text}\0tainted:{','.join(self.tainted)}"
        return hashlib.blake2b(body.encode(), digest_size=12).hexdigest()


def _sources(raw: str) -> tuple[str, ...]:
    found = [s for s in (_SOURCE.sub("", part) for part in raw.split(",")) if s]
    return tuple(dict.fromkeys(found)) or ("unknown",)


def taint_mark(sources: tuple[str, ...]) -> str:
    """The comment that marks a saved fact as written after untrusted content."""
    return f"<!-- tainted: {', '.join(_sources(','.join(sources)))} -->"


def key_mark(key: str) -> str:
    """The comment that records the idempotency key a fact was saved with."""
    return f"<!-- key: {_SOURCE.sub('', key)} -->"


def find_key(folder: Path, key: str) -> tuple[Path, Chunk] | None:
    """The note and chunk saved with ``key`` (newest note first), or None."""
    mark = key_mark(key)
    for path in reversed(memory_files(folder)):
        text = path.read_text(encoding="utf-8", errors="replace")
        at = text.find(mark)
        if at >= 0:
            chunks = parse(text[: at + len(mark)])
            if chunks:
                return path, chunks[-1]
    return None


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
        body = _KEY_MARK.sub("", "\n".join(current)).strip()
        current.clear()
        marks = _TAINT_MARK.findall(body)
        if marks:
            body = _TAINT_MARK.sub("", body).strip()
        if body:
            tainted = _sources(",".join(marks)) if marks else ()
            chunks.append(Chunk(body, tuple(dict.fromkeys(_TAG.findall(body))), tainted))

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


def append_note(
    folder: Path,
    day: date,
    text: str,
    tags: list[str],
    tainted: tuple[str, ...] = (),
    key: str | None = None,
) -> tuple[Path, Chunk]:
    """Append one bullet to the day's note (creating it with a heading); return its chunk.

    ``tainted`` (the turn's untrusted sources) ends the bullet with a taint mark, ``key``
    (a flow step's idempotency key) with a key mark.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{day.isoformat()}.md"
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    lines[1:] = ["\\" + line if _HEADING.match(line) else line for line in lines[1:]]
    missing = [t for t in tags if f"#{t}" not in text]
    if missing:
        lines[-1] += " " + " ".join(f"#{t}" for t in missing)
    if tainted:
        lines[-1] += " " + taint_mark(tainted)
    if key:
        lines[-1] += " " + key_mark(key)
    bullet = "- " + "\n  ".join(lines) + "\n"
    with path.open("a", encoding="utf-8") as out:
        if out.tell() == 0:
            out.write(f"# {day.isoformat()}\n\n")
        out.write(bullet)
    return path, parse(bullet)[0]
