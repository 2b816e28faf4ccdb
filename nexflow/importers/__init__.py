"""``nexflow import``: moving a user's setup from OpenClaw, nanobot or Hermes Agent.

Readers (``openclaw.py``, ``nanobot.py``, ``hermes.py``, registered in ``sources.py``)
turn a home folder into a :class:`~nexflow.importers.model.SourceHome`; ``runner.py``
applies it: skills through the verified install (``skills.py``), persona files into
the workspace's USER.md / WORKSPACE.md (``persona.py``), notes into the owner's memory
(``memory.py``), bot tokens into the secrets file and ``${VAR}`` references into
config.yml (``channels.py``, ``yamlpatch.py``), cron jobs into reminders
(``schedules.py``, ``reminders.py``). Every item gets a report row; see docs/import.md.

Exceptions (``message`` is safe to show the user)::

    ImporterError
    ├── SourceNotFound      the folder is missing or is not that tool's home
    ├── SourceFileInvalid   one source file is unreadable (becomes a ``failed`` row)
    └── ConfigPatchError    config.yml cannot be edited safely (becomes a ``conflict`` row)
"""

from nexflow.importers.errors import (
    ConfigPatchError,
    ImporterError,
    SourceFileInvalid,
    SourceNotFound,
)
from nexflow.importers.model import Report, ReportRow, SourceHome
from nexflow.importers.runner import Target, run_import
from nexflow.importers.sources import SOURCES, read_source

__all__ = [
    "SOURCES",
    "ConfigPatchError",
    "ImporterError",
    "Report",
    "ReportRow",
    "SourceFileInvalid",
    "SourceHome",
    "SourceNotFound",
    "Target",
    "read_source",
    "run_import",
]
