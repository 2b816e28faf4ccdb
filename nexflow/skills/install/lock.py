"""The lock file (``skills.lock``, ``panels.lock``): what was installed, from where, and
the sha256 of every file, so a later change is noticed at load and by ``verify``.

Format (JSON, written atomically)::

    {"version": 1,
     "skills": {"<name>": {"source": "...", "kind": "git", "version": "1.0.0",
                           "installed_at": "2026-12-05T22:00:00+00:00",
                           "folder": "skills/<folder>", "permissions": ["network"],
                           "approved_findings": ["undeclared-network@run.py"],
                           "files": {"SKILL.md": "<sha256>", ...}}}}

``folder`` is relative to the lock file's directory, so the home can be moved.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nexflow.skills.install.errors import InstallError

LOCK_VERSION = 1
_SKIP_DIRS = frozenset({"__pycache__"})
_LINK_PREFIX = "symlink:"


@dataclass(frozen=True)
class LockEntry:
    source: str
    kind: str
    version: str | None
    installed_at: str
    folder: str
    files: Mapping[str, str]
    permissions: tuple[str, ...] = ()
    approved_findings: tuple[str, ...] = ()
    """``rule@file`` of every finding the user approved at install."""
    index: str | None = None
    """For an index install: the index the slug was looked up in."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["files"] = dict(sorted(self.files.items()))
        data["permissions"] = list(self.permissions)
        data["approved_findings"] = list(self.approved_findings)
        return data

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> LockEntry:
        files = raw.get("files")
        if not isinstance(files, dict):
            raise ValueError("'files' must be a mapping of path to sha256")
        return cls(
            source=str(raw["source"]),
            kind=str(raw.get("kind", "folder")),
            version=None if raw.get("version") is None else str(raw["version"]),
            installed_at=str(raw["installed_at"]),
            folder=str(raw["folder"]),
            files={str(k): str(v) for k, v in files.items()},
            permissions=tuple(str(p) for p in raw.get("permissions") or ()),
            approved_findings=tuple(str(p) for p in raw.get("approved_findings") or ()),
            index=None if raw.get("index") is None else str(raw["index"]),
        )


@dataclass(frozen=True)
class Lock:
    """The parsed lock file. ``section`` is ``skills`` or ``panels``."""

    path: Path
    section: str
    entries: Mapping[str, LockEntry] = field(default_factory=dict)

    def folder_of(self, name: str) -> Path:
        return self.path.parent / self.entries[name].folder

    def with_entry(self, name: str, entry: LockEntry) -> Lock:
        return Lock(self.path, self.section, {**self.entries, name: entry})

    def without(self, name: str) -> Lock:
        return Lock(self.path, self.section, {k: v for k, v in self.entries.items() if k != name})


def read_lock(path: Path, section: str = "skills") -> Lock:
    """The lock at ``path`` (empty when the file does not exist)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Lock(path, section)
    except OSError as e:
        raise InstallError(f"cannot read {path}: {e.strerror}") from e
    try:
        data = json.loads(text)
        raw = data.get(section) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{section!r} must be a mapping")
        entries = {str(name): LockEntry.from_json(item) for name, item in raw.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise InstallError(f"{path} is not a valid lock file: {e}") from e
    return Lock(path, section, entries)


def write_lock(lock: Lock) -> None:
    """Write atomically (temp file + rename) so a crash never leaves half a lock."""
    data = {
        "version": LOCK_VERSION,
        lock.section: {name: e.to_json() for name, e in sorted(lock.entries.items())},
    }
    lock.path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".lock-", dir=lock.path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
        os.replace(tmp, lock.path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def iter_files(root: Path) -> Iterator[tuple[str, Path]]:
    """``(relative posix path, path)`` of every file and symlink under ``root``, sorted.

    ``__pycache__`` folders are skipped (Python writes them when a skill runs). A single
    file ``root`` yields itself.
    """
    if root.is_file() or root.is_symlink():
        yield root.name, root
        return
    for folder, dirs, files in os.walk(root):
        base = Path(folder)
        kept = []
        for d in sorted(dirs):
            if d in _SKIP_DIRS:
                continue
            if (base / d).is_symlink():
                files.append(d)  # a link to a folder is recorded, never followed
                continue
            kept.append(d)
        dirs[:] = kept
        for name in sorted(files):
            path = base / name
            yield path.relative_to(root).as_posix(), path


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes; for a symlink, of its target text (prefixed)."""
    if path.is_symlink():
        target = os.readlink(path)
        return _LINK_PREFIX + hashlib.sha256(target.encode()).hexdigest()
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def hash_tree(root: Path) -> dict[str, str]:
    """Relative path → sha256 of every file under ``root`` (or of ``root`` itself when it
    is a single file)."""
    return {rel: file_digest(path) for rel, path in iter_files(root)}


def differences(expected: Mapping[str, str], folder: Path) -> list[str]:
    """What changed under ``folder`` since ``expected`` was recorded; empty when nothing."""
    if not folder.exists():
        return [f"{folder} is missing"]
    found = []
    for rel, digest, now in compare_tree(expected, folder):
        if now is None:
            found.append(f"file {rel} was removed since install")
        elif digest is None:
            found.append(f"file {rel} was added since install")
        else:
            found.append(
                f"file {rel} changed since install (sha256 {now[:12]}…, recorded {digest[:12]}…)"
            )
    return found


def compare_tree(
    expected: Mapping[str, str], folder: Path
) -> Iterator[tuple[str, str | None, str | None]]:
    """``(path, expected sha256, actual sha256)`` for each file of ``folder`` that is not
    as ``expected`` says: the expected ones first, by path (actual None: missing), then
    those not expected (expected None), by path."""
    actual = hash_tree(folder)
    for rel, digest in sorted(expected.items()):
        if actual.get(rel) != digest:
            yield rel, digest, actual.get(rel)
    for rel in sorted(set(actual) - set(expected)):
        yield rel, None, actual[rel]
