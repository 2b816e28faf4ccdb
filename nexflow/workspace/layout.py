"""Where things live inside a workspace and how targets and patch contents are read.

Layout of a workspace (a git repository)::

    README.md                    written at creation
    panels/<panel_id>.nxml       the panel's definition
    panels/<panel_id>.state.json its state: sorted keys, two-space indent (readable diffs)
    notes/*.md                   notes (headings become NOG entities)
    skills/<name>/SKILL.md       skills of this workspace
    anything else                code, persona files, data
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, model_validator

from nexflow.workspace.api import WorkspaceError

PANELS_DIR = "panels"
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_PANEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
MAX_PATH_CHARS = 255


def user_dir(user_id: str) -> str:
    """A directory name for a user id: the id itself when it is path-safe, else a hash."""
    if _SAFE_ID.fullmatch(user_id) and user_id not in {".", ".."}:
        return user_id
    return "u-" + hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:16]


def author_name(user_id: str) -> str:
    """A git author name: no angle brackets or newlines (git refuses them)."""
    clean = re.sub(r"[<>\n\r]", "_", user_id).strip()
    return clean or "unknown"


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise WorkspaceError(
            f"{name!r} is not a workspace name",
            "use 1-32 lowercase letters, digits, '-' or '_'",
        )
    return name


def panel_files(panel_id: str) -> tuple[str, str]:
    """The NXML and state paths of one panel."""
    return f"{PANELS_DIR}/{panel_id}.nxml", f"{PANELS_DIR}/{panel_id}.state.json"


def panel_of(path: str) -> str | None:
    """The panel id a ``panels/`` file belongs to, else None."""
    match = re.fullmatch(rf"{PANELS_DIR}/([^/]+?)(?:\.state\.json|\.nxml)", path)
    return match.group(1) if match else None


def dump_state(state: Any) -> str:
    return json.dumps(state, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def load_state(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


def safe_path(raw: str) -> str:
    """A normalised path inside the workspace, or :class:`WorkspaceError`."""
    if (
        not raw
        or len(raw) > MAX_PATH_CHARS
        or "\\" in raw
        or any(ord(ch) < 32 for ch in raw)
        or raw.startswith("/")
    ):
        raise WorkspaceError(
            f"{raw[:80]!r} is not a path inside the workspace",
            "give a relative path such as notes/plan.md",
        )
    parts = [p for p in PurePosixPath(raw).parts if p != "."]
    if not parts or ".." in parts or ".git" in parts:
        raise WorkspaceError(
            f"{raw[:80]!r} escapes the workspace or names git's own files",
            "give a relative path without '..' or '.git', such as notes/plan.md",
        )
    if parts[0] == PANELS_DIR:
        raise WorkspaceError(
            f"{raw[:80]!r} is a panel file; change a panel with a panel:<id> target",
            'e.g. target "panel:todo" with {"state": {...}}',
        )
    return "/".join(parts)


@dataclass(frozen=True, slots=True)
class Target:
    kind: Literal["panel", "file"]
    name: str  # the panel id or the file path

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


def parse_target(raw: str) -> Target:
    kind, _, name = raw.partition(":")
    if kind == "panel" and _PANEL_ID.fullmatch(name):
        return Target("panel", name)
    if kind == "file":
        return Target("file", safe_path(name))
    raise WorkspaceError(
        f"{raw[:80]!r} is not a patch target", 'use "panel:<panel id>" or "file:<relative path>"'
    )


class PanelContent(BaseModel):
    """The content of a ``panel:<id>`` patch, as JSON.

    ``state`` sets whole keys, ``append`` adds items at the end of list keys, ``nxml``
    replaces the definition. At least one of them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    state: dict[str, JsonValue] = Field(default_factory=dict)
    append: dict[str, list[JsonValue]] = Field(default_factory=dict)
    nxml: str | None = None

    @model_validator(mode="after")
    def _something(self) -> PanelContent:
        if not self.state and not self.append and self.nxml is None:
            raise ValueError('give at least one of "state", "append" or "nxml"')
        return self


def parse_panel_content(content: str) -> PanelContent:
    try:
        return PanelContent.model_validate_json(content)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "content"
        raise WorkspaceError(
            f"the panel patch content is not valid: {where}: {first.get('msg', 'invalid')}",
            'send JSON such as {"state": {"key": value}}, {"append": {"items": [...]}} '
            'or {"nxml": "<NexusPanel ...>"}',
        ) from exc
