"""Memory files into the owner's long-term memory (``nexflow/memory/notes.py``).

``MEMORY.md`` goes into the owner's ``MEMORY.md``, a daily note ``YYYY-MM-DD.md`` into the
owner's note of the same day, each as an imported section (``blocks.py``). The Markdown
files are memory's source of truth: the index picks the sections up on the next memory
call. Every item (bullet or paragraph, as memory splits them) is marked with its origin
by a taint mark, ``<!-- tainted: import:openclaw -->``: another agent wrote these notes,
perhaps after reading untrusted pages, so a turn that reads one back has its writes
confirmed (docs/trust.md). Deleting the mark by hand vouches for the item.
"""

from __future__ import annotations

import re
from pathlib import Path

from nexflow.importers.errors import SourceFileInvalid
from nexflow.importers.files import read_text
from nexflow.importers.model import ReportRow, SourceHome
from nexflow.importers.writes import Writer
from nexflow.memory import notes

_BULLET = re.compile(r"^[-*]\s+")
_HEADING = re.compile(r"^#{1,6}\s")
_SEPARATOR = re.compile(r"^\s*§\s*$", re.MULTILINE)  # Hermes' entry delimiter


def origin_mark(tool: str) -> str:
    return notes.taint_mark((f"import:{tool}",))


def mark_items(text: str, mark: str) -> str:
    """``text`` with ``mark`` at the end of every item, split as ``notes.parse`` splits."""
    out: list[str] = []
    last: int | None = None  # index in ``out`` of the open item's last line

    def close() -> None:
        nonlocal last
        if last is not None and "<!-- tainted:" not in out[last]:
            out[last] = f"{out[last].rstrip()} {mark}"
        last = None

    for line in _SEPARATOR.sub("", text).splitlines():
        stripped = line.strip()
        if not stripped or _HEADING.match(stripped):
            close()
            out.append(line)
            continue
        if _BULLET.match(line):
            close()
        out.append(line)
        last = len(out) - 1
    close()
    return "\n".join(out).strip() + "\n"


def import_memory(source: SourceHome, folder: Path, writer: Writer) -> list[ReportRow]:
    """Import ``source.memory`` into the memory folder ``folder`` (``notes.user_dir``)."""
    rows: list[ReportRow] = []
    mark = origin_mark(source.tool)
    for item in source.memory:
        rel = source.rel(item.path)
        name = notes.MEMORY_FILE if item.day is None else f"{item.day.isoformat()}.md"
        dest = folder / name
        try:
            text = read_text(item.path)
        except SourceFileInvalid as e:
            rows.append(ReportRow("memory", rel, rel, writer.show(dest), "failed", e.reason))
            continue
        if not _SEPARATOR.sub("", text).strip():
            rows.append(ReportRow("memory", rel, rel, writer.show(dest), "skipped", "empty"))
            continue
        header = "" if item.day is None else f"# {item.day.isoformat()}\n\n"
        rows.append(
            writer.upsert(
                "memory",
                rel,
                rel,
                dest,
                f"{source.tool}:{rel}",
                f"{rel}, imported from {source.label}",
                mark_items(text, mark),
                header=header,
            )
        )
    return rows
