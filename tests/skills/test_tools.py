"""read_skill / run_skill: permissions, confirmation by the user, audit records."""

from __future__ import annotations

from pathlib import Path

import pytest
from skills_support import BUNDLED, runner_for, write_skill

from nexflow.skills import (
    IsolationLevel,
    ReadSkillTool,
    RunSkillTool,
    SkillAuditRecord,
    SkillRegistry,
    SkillRunner,
)
from nexflow.tools.base import Tool, ToolContext


class Audit:
    def __init__(self) -> None:
        self.records: list[SkillAuditRecord] = []

    async def __call__(self, record: SkillAuditRecord) -> None:
        self.records.append(record)


class Confirm:
    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.asked: list[tuple[str, str]] = []

    async def __call__(self, title: str, detail: str) -> bool:
        self.asked.append((title, detail))
        return self.answer


@pytest.fixture
def registry(tmp_path: Path) -> SkillRegistry:
    extra = tmp_path / "extra"
    write_skill(extra, "teach", body="# Teach\nDo it by hand.")
    write_skill(extra, "keyed", script="echo ok\n", extra={"requirements": {"env": ["PATH"]}})
    registry = SkillRegistry([BUNDLED, extra])
    registry.reload()
    return registry


def ctx(perms: set[str], confirm: Confirm | None = None) -> ToolContext:
    return ToolContext("u1", "s1", "web", "c1", permissions=frozenset(perms), confirm=confirm)


def make_tool(
    registry: SkillRegistry, workspace: Path, audit: Audit, level: IsolationLevel | None = None
) -> RunSkillTool:
    return RunSkillTool(
        registry,
        runner_for(level) if level is not None else SkillRunner(),
        workspace_for=lambda _ctx: workspace,
        secrets_for=lambda _ctx, skill: {"PATH": "/usr/bin"} if skill.name == "keyed" else {},
        audit=audit,
    )


async def test_tools_implement_the_contract(registry: SkillRegistry, workspace: Path) -> None:
    assert isinstance(ReadSkillTool(registry), Tool)
    tool = make_tool(registry, workspace, Audit())
    assert isinstance(tool, Tool)
    assert tool.spec.dangerous


async def test_read_skill_returns_the_body(registry: SkillRegistry) -> None:
    tool = ReadSkillTool(registry)
    result = await tool.run({"name": "teach"}, ctx(set()))
    assert not result.is_error
    assert "follow the instructions yourself" in result.content
    assert result.content.endswith("Do it by hand.")
    missing = await tool.run({"name": "nope"}, ctx(set()))
    assert missing.is_error
    assert "no skill named 'nope'" in missing.content


async def test_missing_permission_is_denied(registry: SkillRegistry, workspace: Path) -> None:
    audit = Audit()
    tool = make_tool(registry, workspace, audit)
    result = await tool.run({"name": "shell-run", "input": {"command": "echo hi"}}, ctx({"shell"}))
    assert result.is_error
    assert "needs permission filesystem" in result.content
    assert audit.records[0].outcome == "denied"


async def test_dangerous_skill_without_a_way_to_ask_is_refused(
    registry: SkillRegistry, workspace: Path
) -> None:
    tool = make_tool(registry, workspace, Audit())
    args = {"name": "shell-run", "input": {"command": "touch ran"}}
    result = await tool.run(args, ctx({"shell", "filesystem"}, confirm=None))
    assert result.is_error
    assert "needs the user's confirmation" in result.content
    assert not (workspace / "ran").exists()


async def test_declined_confirmation_runs_nothing(registry: SkillRegistry, workspace: Path) -> None:
    audit = Audit()
    confirm = Confirm(False)
    tool = make_tool(registry, workspace, audit)
    args = {"name": "shell-run", "input": {"command": "touch ran"}}
    result = await tool.run(args, ctx({"shell", "filesystem"}, confirm))
    assert result.is_error
    assert "declined" in result.content
    assert not (workspace / "ran").exists()
    title, detail = confirm.asked[0]
    assert title == "Run skill shell-run?"
    assert detail.startswith("$ touch ran")
    assert audit.records[0].outcome == "declined"


async def test_confirmed_command_runs_and_is_audited(
    registry: SkillRegistry, workspace: Path
) -> None:
    audit = Audit()
    tool = make_tool(registry, workspace, audit)
    args = {"name": "shell-run", "input": {"command": "touch ran && echo done"}}
    result = await tool.run(args, ctx({"shell", "filesystem"}, Confirm(True)))
    assert not result.is_error, result.content
    assert result.content == "done\n"
    assert (workspace / "ran").exists()
    record = audit.records[0]
    assert (record.user_id, record.skill, record.outcome, record.ok) == (
        "u1",
        "shell-run",
        "ran",
        True,
    )
    assert record.confirmed is True
    assert record.exit_code == 0
    assert record.input == {"command": "touch ran && echo done"}


async def test_safe_skill_runs_without_confirmation(
    registry: SkillRegistry, workspace: Path
) -> None:
    (workspace / "a.txt").write_text("hi\n")
    tool = make_tool(registry, workspace, Audit())
    result = await tool.run({"name": "file-read", "input": {"path": "a.txt"}}, ctx({"filesystem"}))
    assert not result.is_error, result.content
    assert result.data is not None
    assert result.data["data"]["content"] == "hi\n"


async def test_secrets_need_the_secrets_permission(
    registry: SkillRegistry, workspace: Path
) -> None:
    tool = make_tool(registry, workspace, Audit())
    denied = await tool.run({"name": "keyed"}, ctx(set()))
    assert "needs permission secrets" in denied.content
    allowed = await tool.run({"name": "keyed"}, ctx({"secrets"}))
    assert allowed.content == "ok\n"


async def test_instructions_only_skill_is_not_run(registry: SkillRegistry, workspace: Path) -> None:
    tool = make_tool(registry, workspace, Audit())
    result = await tool.run({"name": "teach"}, ctx(set()))
    assert result.is_error
    assert "read it with read_skill" in result.content


async def test_filesystem_skill_needs_confirmation_without_isolation(
    registry: SkillRegistry, workspace: Path
) -> None:
    """At level none nothing keeps writes inside the workspace, so filesystem is dangerous."""
    tool = make_tool(registry, workspace, Audit(), IsolationLevel.NONE)
    assert await tool.needs_confirmation(registry.get("file-read"))
    (workspace / "a.txt").write_text("hi\n")
    result = await tool.run({"name": "file-read", "input": {"path": "a.txt"}}, ctx({"filesystem"}))
    assert "needs the user's confirmation" in result.content
