"""The skills subsystem as the gateway uses it, built from configuration.

Bundled skills come from the ``skills/`` folder beside the ``nexflow`` package, then
``skills.dirs``, then ``NEXFLOW_SKILLS_DIRS``, then the workspace's ``skills/`` (later
roots override earlier ones by name).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from nexflow.config.model import NexflowConfig
from nexflow.skills.eligibility import HostContext
from nexflow.skills.index import render_index
from nexflow.skills.isolation import IsolationLevel
from nexflow.skills.loader import roots_from
from nexflow.skills.model import BUNDLED_SKILLS, Skill
from nexflow.skills.registry import SkillRegistry
from nexflow.skills.runner import SkillRunner
from nexflow.skills.tools import ReadSkillTool, RunSkillTool, SkillAuditRecord
from nexflow.storage.base import AuditRecord, Storage
from nexflow.tools.base import ToolContext
from nexflow.tools.registry import ToolRegistry


class SkillsService:
    def __init__(
        self,
        registry: SkillRegistry,
        runner: SkillRunner,
        run_tool: RunSkillTool,
        read_tool: ReadSkillTool,
        *,
        budget_chars: int,
        watch: bool,
    ) -> None:
        self.registry = registry
        self.runner = runner
        self.run_tool = run_tool
        self.read_tool = read_tool
        self._budget = budget_chars
        self._watch = watch
        self._section = ""

    def _refresh(self, registry: SkillRegistry) -> None:
        # render_index carries its own header line (and returns "" when nothing is eligible)
        self._section = render_index(registry.list(available_only=True), char_budget=self._budget)

    def prompt_section(self) -> str:
        return self._section

    async def start(self) -> None:
        await self.registry.areload()
        if self._watch:
            self.registry.start_watching()

    async def stop(self) -> None:
        await self.registry.stop_watching()


def build_skills(config: NexflowConfig, storage: Storage, tools: ToolRegistry) -> SkillsService:
    secrets = _secret_values(config)
    roots = roots_from(
        BUNDLED_SKILLS if BUNDLED_SKILLS.is_dir() else None,
        config.workspace_dir / "skills",
        # Installed by `nexflow skills install` (verified, locked: nexflow.skills.install).
        [config.home / "skills", *config.skills.dirs],
        os.environ.get("NEXFLOW_SKILLS_DIRS", ""),
    )
    service: SkillsService | None = None

    def on_change(registry: SkillRegistry) -> None:
        if service is not None:
            service._refresh(registry)

    registry = SkillRegistry(
        roots,
        host=HostContext(env=secrets),
        on_change=on_change,
        disabled=config.skills.disabled,
    )
    level = None if config.skills.isolation == "auto" else IsolationLevel(config.skills.isolation)
    hidden = [config.home, *([config.secrets_file] if config.secrets_file else [])]
    runner = SkillRunner(isolation=level, hidden_paths=hidden)

    async def audit(record: SkillAuditRecord) -> None:
        await storage.audit(
            [
                AuditRecord(
                    "skill_run",
                    record.skill,
                    record.outcome if record.ok or record.outcome != "ran" else "failed",
                    record.user_id or None,
                    record.session_id or None,
                    {
                        "input": dict(record.input),
                        "output": record.output,
                        "error": record.error,
                        "exit_code": record.exit_code,
                        "duration_ms": round(record.duration_ms, 1),
                        "confirmed": record.confirmed,
                        "channel": record.channel,
                    },
                )
            ]
        )

    def secrets_for(ctx: ToolContext, skill: Skill) -> Mapping[str, str]:
        if "secrets" not in ctx.permissions:
            return {}
        granted = config.skills.secrets.get(skill.name, [])
        return {name: secrets[name] for name in granted if name in secrets}

    workspace = config.workspace_dir
    run_tool = RunSkillTool(
        registry,
        runner,
        workspace_for=lambda ctx: workspace,
        secrets_for=secrets_for,
        dangerous=frozenset(config.skills.dangerous),
        audit=audit,
    )
    read_tool = ReadSkillTool(registry)
    tools.add(read_tool)
    tools.add(run_tool)
    service = SkillsService(
        registry,
        runner,
        run_tool,
        read_tool,
        budget_chars=config.skills.prompt_budget_chars,
        watch=config.skills.watch,
    )
    return service


def _secret_values(config: NexflowConfig) -> dict[str, str]:
    """What can be granted to skills: the secrets file, then the environment."""
    from nexflow.config.loader import read_secrets_file

    path = config.secrets_file or config.home / "secrets.env"
    values = read_secrets_file(path) if path.is_file() else {}
    return {**values, **os.environ}
