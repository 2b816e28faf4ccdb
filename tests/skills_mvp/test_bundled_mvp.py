"""The MVP skill folders: they load, are available, and document all seven PRD sections."""

from __future__ import annotations

import re

import pytest
from mvp_support import bundled

from nexflow.skills.location import skill_python
from nexflow.tools.base import Tool

SECTIONS = (
    "Purpose",
    "When to use",
    "How to use",
    "Input schema",
    "Output schema",
    "Examples",
    "Implementation details",
)
MVP = {
    "file-write": ({"filesystem"}, True),
    "http-request": ({"network"}, True),
    "git-basic": ({"filesystem"}, True),
    "reminder": (set(), False),
}


@pytest.mark.parametrize("name", sorted(MVP))
def test_skill_folder(name: str) -> None:
    skill = bundled(name, {"NEXFLOW_HTTP_ALLOW": "example.com"})
    permissions, runnable = MVP[name]
    assert skill.name == name and not skill.warnings
    assert skill.permissions == permissions and skill.runnable is runnable
    assert skill.emoji and skill.version and skill.author
    assert skill.input_schema is not None and skill.output_schema is not None
    headings = re.findall(r"^## (.+)$", skill.body, re.M)
    assert tuple(h for h in headings if h in SECTIONS) == SECTIONS


def test_http_request_unavailable_without_allowlist() -> None:
    from mvp_support import BUNDLED

    from nexflow.skills import load_skill
    from nexflow.skills.eligibility import HostContext, evaluate

    skill = evaluate(load_skill(BUNDLED / "http-request" / "SKILL.md"), HostContext(env={}))
    assert not skill.available and "NEXFLOW_HTTP_ALLOW" in (skill.reason or "")


def test_py_skills_get_the_gateway_venv_python() -> None:
    import sys

    if sys.prefix != sys.base_prefix:
        assert skill_python().startswith(sys.prefix)


def test_reminder_tools_are_tools() -> None:
    from nexflow.tasks import reminder_tools

    tools = reminder_tools(None)  # type: ignore[arg-type]  # specs only
    assert all(isinstance(t, Tool) for t in tools)
    assert [t.spec.name for t in tools] == ["reminder_add", "reminder_list", "reminder_cancel"]
