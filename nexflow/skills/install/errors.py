"""The install exception tree (documented in :mod:`nexflow.skills.install`)."""

from __future__ import annotations

from nexflow.skills.errors import SkillError


class InstallError(SkillError):
    """Installing, verifying or removing failed. ``message`` is safe to show the user."""


class SourceError(InstallError):
    """The source cannot be fetched: no such folder, git clone failed, bad archive or index."""


class UnsafeArchive(SourceError):
    """An archive entry would land outside the target (zip slip, absolute path, link)."""


class IndexMismatch(SourceError):
    """A downloaded file does not match the sha256 the index lists for it."""


class NotApproved(InstallError):
    """A flagged plan was committed without explicit approval."""


class NotInstalled(InstallError):
    """No installed item by that name is recorded in the lock."""
