"""Persona files (SOUL.md, AGENTS.md, IDENTITY.md, USER.md) into Nexflow's workspace
``USER.md`` and ``WORKSPACE.md`` (the persona files every prompt carries,
``nexflow/orchestrator/persona.py``), one imported section per source file."""

from __future__ import annotations

from pathlib import Path

from nexflow.importers.errors import SourceFileInvalid
from nexflow.importers.files import read_text
from nexflow.importers.model import ReportRow, SourceHome
from nexflow.importers.writes import Writer


def import_persona(source: SourceHome, workspace: Path, writer: Writer) -> list[ReportRow]:
    rows: list[ReportRow] = []
    for item in source.persona:
        dest = workspace / item.target
        shown = writer.show(dest)
        try:
            body = read_text(item.path)
        except SourceFileInvalid as e:
            rows.append(
                ReportRow("persona", item.name, source.rel(item.path), shown, "failed", e.reason)
            )
            continue
        if not body.strip():
            rows.append(
                ReportRow("persona", item.name, source.rel(item.path), shown, "skipped", "empty")
            )
            continue
        key = f"{source.tool}:{source.rel(item.path)}"
        title = f"{item.name}, imported from {source.label}"
        rows.append(
            writer.upsert("persona", item.name, source.rel(item.path), dest, key, title, body)
        )
    return rows
