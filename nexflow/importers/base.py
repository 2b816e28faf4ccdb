"""What the three readers share: the builder they fill, and finding persona files, memory
notes, skills, allow lists and times in the shapes the source tools write them."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from nexflow.importers.errors import SourceFileInvalid
from nexflow.importers.files import read_json
from nexflow.importers.model import (
    ChannelSetting,
    CronJob,
    MemoryFile,
    PersonaFile,
    PersonaTarget,
    ReportRow,
    SkillSource,
    SourceHome,
)

PERSONA: Mapping[str, PersonaTarget] = {
    "SOUL.md": "WORKSPACE.md",
    "IDENTITY.md": "WORKSPACE.md",
    "AGENTS.md": "WORKSPACE.md",
    "USER.md": "USER.md",
}
_DAILY = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[-_. ][^/]*)?\.md$")
_SKILL_DEPTH = 3  # skills/<category>/<name>/SKILL.md at most (Hermes groups by category)
T = TypeVar("T")


class Found:
    """The mutable builder a reader fills; :meth:`build` freezes it."""

    def __init__(self, tool: str, label: str, root: Path) -> None:
        self.tool, self.label, self.root = tool, label, root
        self.persona: list[PersonaFile] = []
        self.memory: list[MemoryFile] = []
        self.skills: list[SkillSource] = []
        self.jobs: list[CronJob] = []
        self.channels: list[ChannelSetting] = []
        self.problems: list[ReportRow] = []
        self.default_tz: str | None = None

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def problem(
        self,
        kind: str,
        item: str,
        path: Path,
        reason: str,
        status: Literal["failed", "skipped"] = "failed",
    ) -> None:
        self.problems.append(ReportRow(kind, item, self.rel(path), "-", status, reason))

    def load(self, reader: Callable[[Path], T], path: Path) -> T | None:
        """``reader(path)``, or None after reporting why the file cannot be used."""
        try:
            return reader(path)
        except SourceFileInvalid as e:
            self.problem("file", path.name, path, e.reason)
            return None

    def load_present(self, reader: Callable[[Path], T], path: Path) -> T | None:
        """:meth:`load` for a file that may be absent (None, silently, when it is)."""
        return self.load(reader, path) if path.is_file() else None

    def load_object(self, reader: Callable[[Path], Any], path: Path) -> dict[str, Any] | None:
        """:meth:`load_present` for a config file whose top level must be an object."""
        data = self.load_present(reader, path)
        if data is not None and not isinstance(data, dict):
            self.problem("file", path.name, path, "the top level is not an object")
            return None
        return data

    def build(self) -> SourceHome:
        return SourceHome(
            tool=self.tool,
            label=self.label,
            root=self.root,
            persona=tuple(self.persona),
            memory=tuple(self.memory),
            skills=tuple(self.skills),
            jobs=tuple(self.jobs),
            channels=tuple(self.channels),
            problems=tuple(self.problems),
            default_tz=self.default_tz,
        )


def add_persona(found: Found, folder: Path, names: Iterable[str] = PERSONA) -> None:
    for name in names:
        path = folder / name
        if path.is_file():
            found.persona.append(PersonaFile(name, path, PERSONA[name]))


def add_memory_file(found: Found, path: Path) -> None:
    if path.is_file():
        found.memory.append(MemoryFile(path, None))


def add_daily_notes(found: Found, folder: Path) -> None:
    """``YYYY-MM-DD.md`` (and ``YYYY-MM-DD-<slug>.md``) notes in ``folder``."""
    if not folder.is_dir():
        return
    for path in sorted(folder.iterdir()):
        match = _DAILY.match(path.name)
        if not path.is_file() or match is None:
            continue
        try:
            day = date.fromisoformat(match.group(1))
        except ValueError:
            found.problem("memory", path.name, path, "the name is not a valid date", "skipped")
            continue
        found.memory.append(MemoryFile(path, day))


def add_skills(found: Found, root: Path) -> None:
    """Every folder with a SKILL.md under ``root`` (nested up to a category level);
    hidden folders (``.hub``, ``.git``) are skipped."""
    if not root.is_dir():
        return
    known = {s.path for s in found.skills}
    for skill_md in sorted(root.rglob("SKILL.md")):
        folder = skill_md.parent
        parts = folder.relative_to(root).parts
        if not parts or len(parts) > _SKILL_DEPTH - 1 or any(p.startswith(".") for p in parts):
            continue
        if folder not in known:
            found.skills.append(SkillSource(folder.name, folder))
            known.add(folder)


def cron_entries(found: Found, path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """The jobs in a ``jobs.json`` (``{"jobs": [...]}`` or a bare list) as ``(name, job)``,
    each one that is not an object reported; nothing when the file is absent."""
    if not path.is_file():
        return
    data = found.load(read_json, path)
    jobs = data.get("jobs") if isinstance(data, dict) else data
    if data is not None and not isinstance(jobs, list):
        found.problem("file", path.name, path, 'expected {"jobs": [...]}')
        return
    for index, raw in enumerate(jobs or []):
        if not isinstance(raw, dict):
            found.problem("reminder", f"job {index + 1}", path, "not an object")
            continue
        yield text_of(raw.get("name")) or text_of(raw.get("id")) or f"job {index + 1}", raw


def workspace_dir(root: Path, config: object) -> Path:
    """The workspace set in ``agents.defaults.workspace`` (OpenClaw's key, which nanobot
    kept) when it exists on this machine, else ``<root>/workspace`` (a home copied from
    another machine keeps its old absolute path in the config)."""
    configured = get(config, "agents", "defaults", "workspace")
    if isinstance(configured, str) and configured.strip():
        path = Path(configured.strip()).expanduser()
        if not path.is_absolute():
            path = root / path
        if path.is_dir():
            return path
    return root / "workspace"


def allow_list(value: object) -> tuple[str, ...]:
    """An allow list given as a JSON list (strings or numbers) or a comma-separated string."""
    if isinstance(value, str):
        items: list[object] = [v for v in value.split(",")]
    elif isinstance(value, list):
        items = list(value)
    else:
        return ()
    out = [str(v).strip() for v in items if isinstance(v, str | int) and str(v).strip()]
    return tuple(dict.fromkeys(out))


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 string (naive: UTC) or epoch milliseconds; None when neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, UTC)
    if isinstance(value, str) and value.strip():
        try:
            when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    return None


def get(data: object, *path: str) -> Any:
    """``data[path[0]][path[1]]...`` or None; each key also tried in snake_case."""
    node: Any = data
    for key in path:
        if not isinstance(node, dict):
            return None
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()
        node = node.get(key, node.get(snake))
    return node


def mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def text_of(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""
