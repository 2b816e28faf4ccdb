"""The devops skills' SKILL.md files: they load, document the seven sections, and declare
the effects the trust gate relies on (reads run freely, writes wait for the user)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from bundled_support import BUNDLED, check_folder

from nexflow.skills import load_skill

GRANTS = {
    "github": {"GITHUB_TOKEN": "t", "GITHUB_API_URL": "https://api.github.com"},
    "gitlab": {"GITLAB_TOKEN": "t", "GITLAB_URL": "https://gitlab.com"},
    "ci-triage": {"GITHUB_TOKEN": "t", "GITHUB_API_URL": "https://api.github.com"},
    "prometheus": {"PROMETHEUS_URL": "http://prometheus:9090"},
    "alertmanager": {"ALERTMANAGER_URL": "http://alertmanager:9093"},
}


def frontmatter(name: str) -> dict[str, Any]:
    text = (BUNDLED / name / "SKILL.md").read_text(encoding="utf-8")
    return dict(yaml.safe_load(text.split("---", 2)[1]) or {})


@pytest.mark.parametrize("name", sorted(GRANTS))
def test_loads_with_sections_and_schemas(name: str) -> None:
    skill = check_folder(name, GRANTS[name])
    assert {*skill.env_required, *skill.env_optional} >= set(GRANTS[name])
    assert skill.permissions == frozenset({"network"})
    assert skill.runnable and frontmatter(name)["effects"]["untrusted_output"] is True


@pytest.mark.parametrize(
    ("name", "payload", "writes", "egress", "confirm"),
    [
        ("github", {"action": "list_issues"}, False, False, False),
        ("github", {"action": "job_logs"}, False, False, False),
        ("github", {"action": "create_issue"}, True, True, True),
        ("gitlab", {"action": "job_trace"}, False, False, False),
        ("ci-triage", {"repo": "a/b"}, False, False, False),
        ("prometheus", {"action": "query_range"}, False, False, False),
        ("alertmanager", {}, False, False, False),
        ("alertmanager", {"action": "silences"}, False, False, False),
        ("alertmanager", {"action": "silence"}, True, False, True),
        ("alertmanager", {"action": "expire"}, True, False, True),
    ],
)
def test_declared_effects(
    name: str, payload: dict[str, Any], writes: bool, egress: bool, confirm: bool
) -> None:
    declared = load_skill(BUNDLED / name / "SKILL.md").declared_effects
    assert declared is not None
    found = declared.for_input(payload)
    assert (found.writes, found.egress, found.confirm) == (writes, egress, confirm)
    assert found.untrusted_output is True
