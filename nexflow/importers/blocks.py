"""Imported sections in a Nexflow Markdown file, replaced in place on a re-run.

A section is framed by two heading lines that carry HTML comments::

    ## SOUL.md, imported from OpenClaw <!-- nexflow-import openclaw:SOUL.md sha256=1a2b… -->
    ...the imported text...
    ###### end of import <!-- /nexflow-import openclaw:SOUL.md -->

Headings, not bare comments, because memory splits notes into items at headings and
never indexes a heading: the frame stays out of search. Text outside the frames (the
user's own, or notes saved later) is never touched. The digest says whether the source
changed since the last import.
"""

from __future__ import annotations

import hashlib
import re
from typing import Literal

Change = Literal["added", "updated", "unchanged"]


class BrokenSection(ValueError):
    """An imported section's start is there but its end line is missing."""


def digest(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def render(key: str, title: str, body: str) -> str:
    return (
        f"## {title} <!-- nexflow-import {key} sha256={digest(body)} -->\n\n"
        f"{body.strip()}\n\n"
        f"###### end of import <!-- /nexflow-import {key} -->\n"
    )


def upsert(existing: str, key: str, title: str, body: str) -> tuple[str, Change]:
    """``existing`` with the section ``key`` added or replaced. Raises
    :class:`BrokenSection` when its start line is there without its end line."""
    begin = re.compile(rf"^#+ .*<!-- nexflow-import {re.escape(key)} sha256=(\w+) -->\s*$")
    end = re.compile(rf"^#+ .*<!-- /nexflow-import {re.escape(key)} -->\s*$")
    lines = existing.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if begin.match(line)), None)
    section = render(key, title, body)
    if start is None:
        if not existing:
            return section, "added"
        sep = "" if existing.endswith("\n\n") else ("\n" if existing.endswith("\n") else "\n\n")
        return existing + sep + section, "added"
    stop = next((i for i in range(start + 1, len(lines)) if end.match(lines[i])), None)
    if stop is None:
        raise BrokenSection(
            f"the imported section {key!r} has lost its end line "
            "('###### end of import ...'); restore it or delete the section"
        )
    match = begin.match(lines[start])
    assert match is not None
    if match.group(1) == digest(body):
        return existing, "unchanged"
    return "".join([*lines[:start], section, *lines[stop + 1 :]]), "updated"
