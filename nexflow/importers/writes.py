"""Every file the import changes goes through a :class:`Writer`: in a dry run it only
remembers the new text (so later steps see earlier ones), otherwise it writes atomically
(a temporary file in the same folder, then ``os.replace``), keeping the file's mode."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from nexflow.importers import blocks
from nexflow.importers.model import ReportRow, Status

_DONE: dict[blocks.Change, tuple[Status, Status]] = {
    "added": ("would import", "imported"),
    "updated": ("would update", "updated"),
    "unchanged": ("unchanged", "unchanged"),
}


class Writer:
    def __init__(self, home: Path, *, dry_run: bool) -> None:
        self.home = home
        self.dry_run = dry_run
        self._pending: dict[Path, str] = {}

    def show(self, path: Path) -> str:
        """``path`` as the report shows it: relative to the Nexflow home when inside."""
        try:
            return str(path.relative_to(self.home))
        except ValueError:
            return str(path)

    def status(self, change: blocks.Change) -> Status:
        return _DONE[change][0 if self.dry_run else 1]

    def read(self, path: Path) -> str:
        """The file's text as the import has left it so far ("" when it does not exist).
        Raises ``OSError`` or ``UnicodeDecodeError``."""
        if path in self._pending:
            return self._pending[path]
        if not path.exists():
            return ""
        return path.read_text(encoding="utf-8")

    def write(self, path: Path, text: str, *, private: bool = False) -> None:
        """Record (dry run) or atomically write ``text``; ``private`` files are 0600."""
        self._pending[path] = text
        if self.dry_run:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = 0o600 if private else (path.stat().st_mode & 0o777 if path.exists() else 0o644)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def upsert(
        self,
        kind: str,
        item: str,
        source: str,
        dest: Path,
        key: str,
        title: str,
        body: str,
        *,
        header: str = "",
    ) -> ReportRow:
        """Add or refresh the imported section ``key`` of ``dest`` (a new file starts
        with ``header``) and report it."""
        shown = self.show(dest)
        try:
            current = self.read(dest)
            new, change = blocks.upsert(current or header, key, title, body)
            if change != "unchanged":
                self.write(dest, new)
        except blocks.BrokenSection as e:
            return ReportRow(kind, item, source, shown, "conflict", str(e))
        except UnicodeDecodeError:
            return ReportRow(kind, item, source, shown, "failed", "the file is not UTF-8 text")
        except OSError as e:
            return ReportRow(kind, item, source, shown, "failed", f"cannot write: {e.strerror}")
        return ReportRow(kind, item, source, shown, self.status(change))
