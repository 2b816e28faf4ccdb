"""Quarantine: private folders where fetched items wait for the scan and the user's approval.

Nothing in quarantine is ever loaded or run: it is outside every skills root.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

from nexflow.skills.install.errors import InstallError


def new_stage(quarantine_dir: Path, label: str) -> Path:
    """A fresh, owner-only folder under ``quarantine_dir``."""
    try:
        quarantine_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in label)[:40] or "item"
        return Path(tempfile.mkdtemp(prefix=f"{safe}-", dir=quarantine_dir))
    except OSError as e:
        raise InstallError(f"cannot create a quarantine folder in {quarantine_dir}: {e}") from e


def remove_tree(path: Path) -> None:
    """Delete ``path`` (a folder or file), read-only entries (git objects) included."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
        return
    if not path.exists():
        return
    for folder, dirs, _files in os.walk(path):
        for d in dirs:
            target = Path(folder) / d
            if not target.is_symlink():
                target.chmod(stat.S_IRWXU)
    path.chmod(stat.S_IRWXU)
    shutil.rmtree(path)
