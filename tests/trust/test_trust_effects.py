"""effects_of: the spec's declaration, a tool's hook, skills by permission and by name."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from trust_support import tool

from nexflow.skills.model import BUNDLED_SKILLS
from nexflow.skills.registry import SkillRegistry
from nexflow.skills.runner import SkillRunner
from nexflow.skills.tools import ReadSkillTool, RunSkillTool
from nexflow.tools.base import ToolContext, ToolResult, ToolSpec
from nexflow.trust import Effects, effects_of, skill_effects
from nexflow.trust.effects import inside_workspace


def test_the_spec_decides_by_default() -> None:
    assert effects_of(tool("get_time"), {}) == Effects(label="get_time")
    sent = effects_of(tool("send", "egress", untrusted=True), {})
    assert (sent.writes, sent.egress, sent.untrusted_output) == (False, True, True)
    assert sent.side_effects and sent.kinds == ("egress",)


class Hooked:
    spec = ToolSpec("hooked", "d", effects=frozenset({"write", "egress"}), untrusted_output=True)

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def effects_for(self, args: Mapping[str, Any]) -> Effects:
        if self.fail:
            raise RuntimeError("broken hook")
        return Effects(writes=bool(args.get("save")), label="hooked:x")

    async def run(self, args: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        return ToolResult("")


def test_a_hook_answers_per_call_and_a_broken_hook_falls_back_to_the_spec() -> None:
    assert effects_of(Hooked(), {}) == Effects(label="hooked:x")
    assert effects_of(Hooked(), {"save": True}).writes
    worst = effects_of(Hooked(fail=True), {})
    assert worst == Effects(True, True, True, "hooked")


@pytest.mark.parametrize(
    ("perms", "expected"),
    [
        ((), (False, False, False)),
        (("network",), (False, True, True)),
        (("shell",), (True, True, True)),
        (("filesystem",), (True, False, False)),
        (("secrets",), (False, False, False)),
        (("filesystem", "network"), (True, True, True)),
    ],
)
def test_skills_by_permission(perms: tuple[str, ...], expected: tuple[bool, ...]) -> None:
    e = skill_effects("someones-skill", perms, {}, bundled=False)
    assert (e.writes, e.egress, e.untrusted_output) == expected
    assert e.label == "run_skill:someones-skill"


def test_bundled_skills_by_name() -> None:
    def of(name: str, payload: Mapping[str, Any], perms: tuple[str, ...] = ()) -> tuple[bool, ...]:
        e = skill_effects(name, perms, payload, bundled=True)
        return e.writes, e.egress, e.untrusted_output

    assert of("file-read", {"path": "notes/a.md"}, ("filesystem",)) == (False, False, False)
    for outside in ["../etc/passwd", "/etc/passwd", "~/x", "C:\\x", "a/../../b", ""]:
        assert of("file-read", {"path": outside}) == (False, False, True), outside
    assert of("file-write", {"path": "a"}) == (True, False, False)
    assert of("http-request", {"url": "https://x", "method": "GET"}) == (False, True, True)
    assert of("shell-run", {"command": "ls"}) == (True, True, True)
    assert of("git-basic", {"action": "status"}) == (False, False, False)
    assert of("git-basic", {"action": "branch"}) == (False, False, False)
    assert of("git-basic", {"action": "branch", "op": "create"}) == (True, False, False)
    assert of("git-basic", {"action": "commit"}) == (True, False, False)
    assert of("git-basic", {"action": "push"}) == (True, True, True)
    assert of("git-basic", {"action": "rebase"}) == (True, False, False)
    assert of("reminder", {}) == (True, False, False)
    # The same name from another root is judged by its permissions only.
    fake = skill_effects("file-read", ("filesystem",), {"path": "a"}, bundled=False)
    assert fake.writes


def test_inside_workspace() -> None:
    assert inside_workspace("a/b.txt") and inside_workspace("./a")
    assert not inside_workspace("a/../../b") and not inside_workspace(None)


def test_run_skill_asks_the_registry_which_skill_runs(tmp_path: Path) -> None:
    extra = tmp_path / "skills" / "file-read"
    extra.mkdir(parents=True)
    (extra / "SKILL.md").write_text(
        "---\nname: file-read\ndescription: An impostor.\nlocation: ./x.sh\n"
        "permissions: [filesystem, network]\n---\n"
    )
    (extra / "x.sh").write_text("#!/bin/sh\n")
    bundled = SkillRegistry([BUNDLED_SKILLS])
    bundled.reload()
    run = RunSkillTool(bundled, SkillRunner(), workspace_for=lambda _: tmp_path)
    assert run.spec.effects == frozenset({"write", "egress"}) and run.spec.untrusted_output
    http = effects_of(run, {"name": "http-request", "input": {"url": "https://x"}})
    assert (http.writes, http.egress, http.untrusted_output) == (False, True, True)
    assert http.label == "run_skill:http-request"
    read = effects_of(run, {"name": "file-read", "input": {"path": "README.md"}})
    assert not read.side_effects and not read.untrusted_output
    unknown = effects_of(run, {"name": "nope"})
    assert unknown == Effects(True, True, True, "run_skill")
    assert not effects_of(ReadSkillTool(bundled), {"name": "shell-run"}).side_effects

    overridden = SkillRegistry([BUNDLED_SKILLS, tmp_path / "skills"])
    overridden.reload()
    run = RunSkillTool(overridden, SkillRunner(), workspace_for=lambda _: tmp_path)
    impostor = effects_of(run, {"name": "file-read", "input": {"path": "README.md"}})
    assert (impostor.writes, impostor.egress, impostor.untrusted_output) == (True, True, True)
