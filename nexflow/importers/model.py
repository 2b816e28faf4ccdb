"""What an import reads (a :class:`SourceHome`) and what it reports (:class:`ReportRow`).

Readers (``openclaw.py``, ``nanobot.py``, ``hermes.py``) turn a tool's home folder into a
:class:`SourceHome`: plain, validated values only. The appliers (``persona.py``,
``memory.py``, ``channels.py``, ``reminders.py``, ``skills.py``) turn it into Nexflow
files, each step reporting one row per item.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Literal

Status = Literal[
    "would import",
    "would update",
    "imported",
    "updated",
    "unchanged",
    "skipped",
    "flagged",
    "conflict",
    "failed",
]
"""``would …`` only in a dry run. ``flagged``: a skill the scan flagged (not installed).
``conflict``: Nexflow already has something different there and it was kept."""

PersonaTarget = Literal["USER.md", "WORKSPACE.md"]
ScheduleKind = Literal["at", "every", "cron"]


@dataclass(frozen=True, slots=True)
class ReportRow:
    kind: str  # skill, persona, memory, reminder, channel, allowlist, file
    item: str
    source: str
    destination: str
    status: Status
    reason: str = ""
    details: tuple[str, ...] = ()  # extra lines: a flagged skill's findings, a hint


@dataclass(frozen=True, slots=True)
class PersonaFile:
    name: str  # SOUL.md, AGENTS.md, USER.md, IDENTITY.md
    path: Path
    target: PersonaTarget


@dataclass(frozen=True, slots=True)
class MemoryFile:
    path: Path
    day: date | None  # None: the long-term MEMORY.md; else a daily note


@dataclass(frozen=True, slots=True)
class SkillSource:
    name: str  # the folder's name
    path: Path


@dataclass(frozen=True, slots=True)
class CronJob:
    """A scheduled job of the source tool, normalised.

    ``kind`` ``at`` has ``at``; ``every`` has ``every_s`` (and maybe ``anchor``, a time it
    ran or was due); ``cron`` has ``expr``. ``command`` is set when the job runs a program
    instead of sending a message or prompting the agent; ``limited`` says why a repeating
    job cannot repeat forever (e.g. "repeats 3 times").
    """

    name: str
    text: str
    kind: ScheduleKind
    source: Path
    at: datetime | None = None
    every_s: float | None = None
    expr: str | None = None
    tz: str | None = None
    anchor: datetime | None = None
    channel: str | None = None
    chat_id: str | None = None
    enabled: bool = True
    command: str | None = None
    limited: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelSetting:
    """A chat channel of the source tool: its bot token and who may talk to it."""

    channel: str  # telegram, discord, ...
    source: Path
    key: str  # where in the source file, e.g. "channels.telegram.botToken"
    token: str | None = None
    allow: tuple[str, ...] = ()
    enabled: bool = True
    allow_key: str = ""  # where the allow list is, when not under ``key``


@dataclass(frozen=True, slots=True)
class SourceHome:
    """Everything found in one tool's home folder, plus the files that could not be read."""

    tool: str  # openclaw, nanobot, hermes
    label: str  # OpenClaw, nanobot, Hermes Agent
    root: Path
    persona: tuple[PersonaFile, ...] = ()
    memory: tuple[MemoryFile, ...] = ()
    skills: tuple[SkillSource, ...] = ()
    jobs: tuple[CronJob, ...] = ()
    channels: tuple[ChannelSetting, ...] = ()
    problems: tuple[ReportRow, ...] = ()
    default_tz: str | None = None  # the zone the tool reads cron lines in, when known

    def rel(self, path: Path) -> str:
        """``path`` relative to the source home, for the report."""
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)


@dataclass(frozen=True, slots=True)
class Report:
    tool: str
    source: Path
    dry_run: bool
    rows: tuple[ReportRow, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not any(r.status in ("failed", "conflict") for r in self.rows)
