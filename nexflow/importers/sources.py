"""The source tools Nexflow imports from: one reader module each, registered here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from nexflow.importers import hermes, nanobot, openclaw
from nexflow.importers.errors import SourceNotFound
from nexflow.importers.model import SourceHome


@dataclass(frozen=True, slots=True)
class SourceKind:
    read: Callable[[Path], SourceHome]
    looks_like: Callable[[Path], bool]
    expected: str  # what a home of this kind holds, for the error message


SOURCES: Mapping[str, SourceKind] = {
    "openclaw": SourceKind(openclaw.read, openclaw.looks_like, "openclaw.json or workspace/"),
    "nanobot": SourceKind(nanobot.read, nanobot.looks_like, "config.json or workspace/"),
    "hermes": SourceKind(hermes.read, hermes.looks_like, "config.yaml, .env, SOUL.md or memories/"),
}


def read_source(tool: str, root: Path) -> SourceHome:
    """Read ``root`` as ``tool``'s home; :class:`SourceNotFound` when it is not one."""
    kind = SOURCES[tool]
    if not root.is_dir():
        raise SourceNotFound(f"{root} is not a folder")
    if not kind.looks_like(root):
        raise SourceNotFound(f"{root} does not look like a {tool} home (no {kind.expected})")
    return kind.read(root)
