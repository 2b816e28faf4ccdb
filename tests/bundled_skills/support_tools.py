"""Helpers for the bundled tool-skill tests (ssh-command, sql-query, python-snippet,
send-email, calendar): load a bundled skill, run it through the real SkillRunner, and
drive a real gateway whose scripted model calls ``run_skill``.

A module name unique across ``tests/`` (imported as a top-level module by pytest's
rootdir-relative import mode).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nexflow.skills import load_skill
from nexflow.skills.eligibility import HostContext, evaluate
from nexflow.skills.isolation import IsolationLevel, detect
from nexflow.skills.limits import Limits
from nexflow.skills.model import Skill
from nexflow.skills.result import RunResult
from nexflow.skills.runner import SkillRunner
from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness

BUNDLED = Path(__file__).resolve().parents[2] / "skills"


def _levels() -> list[IsolationLevel]:
    with tempfile.TemporaryDirectory() as tmp:
        best, _ = detect(Path(tmp))
    return [IsolationLevel.NONE] if best is IsolationLevel.NONE else [IsolationLevel.NONE, best]


LEVELS = _levels()
"""``none`` plus the best sandbox this host supports."""


def bundled(name: str, env: Mapping[str, str] | None = None) -> Skill:
    """The bundled skill ``name``, checked available with ``env`` as the host's secrets."""
    host = HostContext(env={"PATH": os.environ.get("PATH", os.defpath), **(env or {})})
    skill = evaluate(load_skill(BUNDLED / name / "SKILL.md"), host)
    assert skill.available, skill.reason
    return skill


async def run_bundled(
    name: str,
    payload: Mapping[str, Any],
    workspace: Path,
    *,
    secrets: Mapping[str, str] | None = None,
    level: IsolationLevel = IsolationLevel.NONE,
) -> RunResult:
    skill = bundled(name, secrets)
    runner = SkillRunner(isolation=level, limits=Limits(nproc=64))
    return await runner.run(skill, payload, workspace=workspace, secrets=secrets)


def write_secrets(home: Path, values: Mapping[str, str]) -> None:
    """The gateway's secrets file (``<home>/secrets.env``), readable only by its owner."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "secrets.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    path.chmod(0o600)


def gateway_for(home: Path, skill: str, values: Mapping[str, str]) -> GatewayHarness:
    """A gateway that grants ``values`` (from its secrets file) to ``skill``."""
    write_secrets(home, values)
    grant = json.dumps({skill: sorted(values)})
    return GatewayHarness(home, env={"NEXFLOW_SKILLS__SECRETS": grant})


async def pending_confirmation(gw: GatewayHarness) -> dict[str, Any]:
    """The first pending confirmation card, waiting for it to appear."""
    async with asyncio.timeout(30):
        while True:
            pending = (await gw.http.get("/api/v1/confirmations")).json()
            if pending:
                return dict(pending[0])
            await asyncio.sleep(0.05)


async def call_skill(
    gw: GatewayHarness,
    name: str,
    payload: Mapping[str, Any],
    *,
    approve: bool | None = None,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """The scripted model calls ``run_skill``; answer a confirmation if ``approve`` is set.

    Returns ``(chat reply, the tool message the model got next, the confirmation card)``.
    """
    gw.llm.push(Reply(tool_calls=(("run_skill", {"name": name, "input": dict(payload)}),)))
    turn = asyncio.create_task(gw.chat(f"please use {name}"))
    card = None
    if approve is not None:
        card = await pending_confirmation(gw)
        resp = await gw.http.post(f"/api/v1/confirmations/{card['id']}", json={"approve": approve})
        assert resp.status_code == 200, resp.text
    async with asyncio.timeout(60):
        reply = await turn
    tool_msg = next(m for m in reversed(gw.llm.requests[-1]["messages"]) if m.get("role") == "tool")
    return reply, dict(tool_msg), card


def tool_json(tool_msg: dict[str, Any]) -> Any:
    """The JSON a skill printed, out of the framed tool message the model got."""
    content = str(tool_msg["content"])
    start, end = content.index("\n") + 1, content.rindex("\n</tool_output")
    return json.loads(content[start:end])


def tool_text(tool_msg: dict[str, Any]) -> str:
    return str(tool_msg["content"])
