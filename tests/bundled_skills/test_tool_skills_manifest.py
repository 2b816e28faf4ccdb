"""The five tool skills (ssh-command, sql-query, python-snippet, send-email, calendar):
their SKILL.md loads cleanly, is complete, and declares the effects the trust gate uses."""

from __future__ import annotations

import pytest
from bundled_support import BUNDLED, check_folder

from nexflow.skills import load_skill
from nexflow.skills.schema import validate

GRANTS = {
    "ssh-command": {"SSH_HOSTS": "web1=deploy@host", "SSH_KEY_FILE": "k", "SSH_KNOWN_HOSTS": "h"},
    "sql-query": {"SQL_DATABASES": "shop=sqlite:///db/shop.db"},
    "python-snippet": {},
    "send-email": {"SMTP_HOST": "mail.example.org", "SMTP_FROM": "bot@example.org"},
    "calendar": {},
}


@pytest.mark.parametrize("name", GRANTS)
def test_manifest_is_complete(name: str) -> None:
    skill = check_folder(name, GRANTS[name])
    assert skill.input_schema is not None
    assert skill.input_schema.get("additionalProperties") is False
    assert skill.timeout_sec <= 60 and skill.max_output_kb <= 1024


# (skill, input, writes, egress, untrusted output, confirm)
CASES = [
    ("ssh-command", {"host": "web1", "command": "uptime"}, True, True, True, True),
    ("send-email", {"to": "a@example.com", "subject": "s", "body": "b"}, False, True, False, True),
    ("sql-query", {"database": "d", "query": "SELECT 1"}, False, False, True, False),
    (
        "sql-query",
        {"database": "d", "query": "DELETE FROM t", "write": True},
        True,
        False,
        True,
        True,
    ),
    ("python-snippet", {"code": "print(1)"}, True, False, False, False),
    ("calendar", {"action": "agenda"}, False, False, True, False),
    ("calendar", {}, False, False, True, False),
    (
        "calendar",
        {"action": "add_event", "summary": "x", "start": "2026-12-24"},
        True,
        True,
        False,
        True,
    ),
]


@pytest.mark.parametrize(("name", "payload", "writes", "egress", "untrusted", "confirm"), CASES)
def test_declared_effects(
    name: str,
    payload: dict[str, object],
    writes: bool,
    egress: bool,
    untrusted: bool,
    confirm: bool,
) -> None:
    skill = load_skill(BUNDLED / name / "SKILL.md")
    assert skill.declared_effects is not None and skill.input_schema is not None
    assert validate(payload, skill.input_schema) == []  # the example is a valid call
    call = skill.declared_effects.for_input(payload)
    assert (call.writes, call.egress, call.untrusted_output, call.confirm) == (
        writes,
        egress,
        untrusted,
        confirm,
    )
