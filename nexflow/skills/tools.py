"""The two tools the model gets: ``read_skill`` (progressive disclosure) and ``run_skill``.

One generic ``run_skill`` instead of a tool per skill keeps the tool list (and the
prompt) constant in size however many skills are installed: the index already names them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from nexflow.skills import permissions as perms
from nexflow.skills.errors import SkillError
from nexflow.skills.isolation import IsolationLevel
from nexflow.skills.model import Skill
from nexflow.skills.registry import SkillRegistry
from nexflow.skills.result import RunResult
from nexflow.skills.runner import SkillRunner
from nexflow.tools.base import ToolContext, ToolResult, ToolSpec
from nexflow.trust.effects import Effects, skill_effects

AUDIT_OUTPUT_CHARS = 2000


@dataclass(frozen=True, slots=True)
class SkillAuditRecord:
    """One attempted skill run: who, which skill, input, outcome. Written by the caller's
    audit sink; ``outcome`` is ``ran``, ``denied``, ``declined`` or ``refused``."""

    user_id: str
    session_id: str
    channel: str
    chat_id: str
    skill: str
    input: Mapping[str, Any]
    outcome: str
    ok: bool
    output: str = ""
    error: str | None = None
    exit_code: int | None = None
    duration_ms: float = 0.0
    confirmed: bool | None = None
    at: float = 0.0


class SkillAudit(Protocol):
    """Where audit records go (the lead's audit log)."""

    async def __call__(self, record: SkillAuditRecord) -> None: ...


WorkspaceFor = Callable[[ToolContext], Path]
SecretsFor = Callable[[ToolContext, Skill], Mapping[str, str]]


class SkillHandOff(Protocol):
    """Runs a skill the gate let through somewhere else (``skills.run_on: workers``:
    :class:`nexflow.skills.remote.WorkerSkills`) and returns its result; raises
    :class:`SkillError` when it cannot."""

    async def run(self, skill: str, payload: Mapping[str, Any], ctx: ToolContext) -> RunResult: ...


class ReadSkillTool:
    """Returns a skill's instructions (its SKILL.md body) on demand."""

    def __init__(self, registry: SkillRegistry) -> None:
        self._registry = registry
        self._spec = ToolSpec(
            name="read_skill",
            description="Read the full instructions of a skill listed in the skills index.",
            parameters={
                "type": "object",
                "properties": {"name": {"type": "string", "description": "Skill name."}},
                "required": ["name"],
            },
        )

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    async def run(self, args: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        try:
            skill = self._registry.get(str(args.get("name", "")))
        except SkillError as e:
            return ToolResult(e.message, is_error=True)
        if not skill.available:
            return ToolResult(f"skill {skill.name!r} is unavailable: {skill.reason}", is_error=True)
        how = (
            "Run it with run_skill."
            if skill.runnable
            else "It has no program: follow the instructions yourself."
        )
        header = f"# skill: {skill.name}\n{how}\n\n"
        return ToolResult(
            header + skill.body, data={"name": skill.name, "runnable": skill.runnable}
        )


class RunSkillTool:
    """Runs a skill after checking permissions and, for dangerous skills, asking the user.

    ``workspace_for`` maps the caller to its workspace folder; ``secrets_for`` returns the
    env values this caller is granted for this skill (only declared names are passed on);
    ``dangerous`` is the config list of extra dangerous skill names.

    ``hand_off`` (set by the composition root with ``skills.run_on: workers``): the gate
    (permissions, confirmation, audit) stays here, the spawn happens on a worker, which
    calls :meth:`execute` there.
    """

    hand_off: SkillHandOff | None = None

    def __init__(
        self,
        registry: SkillRegistry,
        runner: SkillRunner,
        *,
        workspace_for: WorkspaceFor,
        secrets_for: SecretsFor | None = None,
        dangerous: frozenset[str] = frozenset(),
        audit: SkillAudit | None = None,
    ) -> None:
        self._registry = registry
        self._runner = runner
        self._workspace_for = workspace_for
        self._secrets_for = secrets_for
        self._dangerous = dangerous
        self._audit = audit
        self._spec = ToolSpec(
            name="run_skill",
            description="Run a runnable skill from the skills index with a JSON input.",
            parameters={
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "Skill name."},
                    "input": {"type": "object", "description": "Input per the skill's schema."},
                },
                "required": ["name"],
            },
            dangerous=True,
            # The worst case; effects_for says what this call does (nexflow.trust.effects).
            effects=frozenset({"write", "egress"}),
            untrusted_output=True,
        )

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    def effects_for(self, args: Mapping[str, Any]) -> Effects:
        """What running this skill with this input does (the trust gate's hook)."""
        try:
            skill = self._registry.get(str(args.get("name", "")))
        except SkillError:
            return Effects.of_spec(self._spec)
        payload = args.get("input")
        return skill_effects(
            skill.name,
            skill.permissions,
            payload if isinstance(payload, Mapping) else {},
            bundled=skill.bundled,
            declared=skill.declared_effects,
        )

    async def needs_confirmation(
        self, skill: Skill, payload: Mapping[str, Any] | None = None
    ) -> bool:
        """True when this call waits for the user: a dangerous skill (permissions, config),
        or a bundled skill whose declared effects ask to confirm this input."""
        declared = skill.declared_effects if skill.bundled else None
        if declared is not None and declared.for_input(payload or {}).confirm:
            return True
        level = await self._runner.isolation_level()
        return perms.is_dangerous(
            skill,
            dangerous_names=self._dangerous,
            filesystem_confined=level is not IsolationLevel.NONE,
            declared=declared is not None,
        )

    async def run(self, args: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        name = str(args.get("name", ""))
        payload = args.get("input") or {}
        if not isinstance(payload, Mapping):
            return ToolResult("input must be a JSON object", is_error=True)
        try:
            skill, confirmed = await self._gate(name, payload, ctx)
            if self.hand_off is not None:
                result = await self.hand_off.run(skill.name, payload, ctx)
            else:
                result = await self._spawn(skill, payload, ctx, ctx.idempotency_key)
        except _Refusal as r:
            return await self._refuse(ctx, name, payload, r.outcome, r.message)
        except SkillError as e:
            return await self._refuse(ctx, name, payload, "refused", e.message)
        await self._record(ctx, result, confirmed)
        return _tool_result(result)

    async def execute(
        self, name: str, payload: Mapping[str, Any], ctx: ToolContext, idempotency_key: str
    ) -> RunResult:
        """A worker's half of a handed-off run: the gateway asked and audits; here the
        skill is looked up in this process's registry, its permissions checked again, its
        secrets resolved from this process's configuration, and it is spawned with
        ``NEXFLOW_IDEMPOTENCY_KEY``. Raises :class:`SkillError` when it cannot run."""
        skill = self._registry.get(name)
        perms.check_permissions(skill, ctx.permissions)
        if not (skill.available and skill.runnable):
            why = skill.reason or "it has no program"
            raise SkillError(f"skill {name!r} cannot run on this worker: {why}")
        return await self._spawn(skill, payload, ctx, idempotency_key)

    async def _spawn(
        self,
        skill: Skill,
        payload: Mapping[str, Any],
        ctx: ToolContext,
        idempotency_key: str | None,
    ) -> RunResult:
        secrets = self._secrets_for(ctx, skill) if self._secrets_for else {}
        return await self._runner.run(
            skill,
            payload,
            workspace=self._workspace_for(ctx),
            secrets=secrets,
            idempotency_key=idempotency_key,
        )

    async def _gate(
        self, name: str, payload: Mapping[str, Any], ctx: ToolContext
    ) -> tuple[Skill, bool | None]:
        """Find the skill, check permissions, ask the user when dangerous."""
        try:
            skill = self._registry.get(name)
            perms.check_permissions(skill, ctx.permissions)
        except SkillError as e:
            raise _Refusal("denied", e.message) from e
        if not skill.available:
            raise _Refusal("refused", f"skill {name!r} is unavailable: {skill.reason}")
        if not skill.runnable:
            raise _Refusal(
                "refused",
                f"skill {name!r} has no program to run; read it with read_skill and "
                "follow its instructions",
            )
        if not await self.needs_confirmation(skill, payload):
            return skill, None
        if ctx.confirm is None:
            raise _Refusal(
                "refused",
                f"skill {name!r} needs the user's confirmation, and this channel cannot ask",
            )
        if not await ctx.confirm(*perms.confirmation(skill, payload)):
            raise _Refusal("declined", f"the user declined to run {name!r}")
        return skill, True

    async def _refuse(
        self, ctx: ToolContext, name: str, payload: Mapping[str, Any], outcome: str, why: str
    ) -> ToolResult:
        if self._audit is not None:
            await self._audit(
                SkillAuditRecord(
                    ctx.user_id,
                    ctx.session_id,
                    ctx.channel,
                    ctx.chat_id,
                    name,
                    payload,
                    outcome,
                    ok=False,
                    error=why,
                    at=time.time(),
                )
            )
        return ToolResult(why, is_error=True, data={"outcome": outcome})

    async def _record(self, ctx: ToolContext, result: RunResult, confirmed: bool | None) -> None:
        if self._audit is None:
            return
        await self._audit(
            SkillAuditRecord(
                ctx.user_id,
                ctx.session_id,
                ctx.channel,
                ctx.chat_id,
                result.skill,
                result.input,
                "ran",
                result.ok,
                result.output[:AUDIT_OUTPUT_CHARS],
                result.error,
                result.exit_code,
                result.duration_ms,
                confirmed,
                time.time(),
            )
        )


class _Refusal(Exception):
    def __init__(self, outcome: str, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.message = message


def _tool_result(result: RunResult) -> ToolResult:
    if result.ok:
        content = result.output if result.data is None else json.dumps(result.data)
    else:
        tail = f"\nstderr: {result.stderr_tail[-500:]}" if result.stderr_tail else ""
        content = f"skill {result.skill!r} failed: {result.error}\n{result.output[-2000:]}{tail}"
    return ToolResult(content, is_error=not result.ok, data=result.to_json())
