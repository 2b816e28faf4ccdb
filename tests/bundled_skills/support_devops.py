"""Helpers for the devops skill tests (github, gitlab, ci-triage, prometheus,
alertmanager): run a bundled skill through the real SkillRunner, and drive a real
gateway whose scripted model calls ``run_skill`` while the fakes answer on loopback.

A module name unique across ``tests/`` (tests are not packages).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

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


def _best_level() -> IsolationLevel:
    with tempfile.TemporaryDirectory() as tmp:
        best, _ = detect(Path(tmp))
    return best


BEST = _best_level()
"""The strongest sandbox this host supports (``none`` when there is none)."""


def frontmatter(name: str) -> dict[str, Any]:
    text = (BUNDLED / name / "SKILL.md").read_text(encoding="utf-8")
    return dict(yaml.safe_load(text.split("---", 2)[1]) or {})


def bundled(name: str, env: Mapping[str, str] | None = None) -> Skill:
    """The bundled skill ``name``, available with ``env`` as what the host could grant.

    Optional variables the test grants are passed on by the loader's ``env_optional``
    when it knows that field, else by listing them with the required names.
    """
    env = dict(env or {})
    host = HostContext(env={"PATH": os.environ.get("PATH", os.defpath), **env})
    skill = evaluate(load_skill(BUNDLED / name / "SKILL.md"), host)
    assert skill.available, skill.reason
    if not hasattr(skill, "env_optional"):
        optional = frontmatter(name).get("env_optional") or ()
        extra = tuple(n for n in optional if n in env and n not in skill.env_required)
        skill = dataclasses.replace(skill, env_required=(*skill.env_required, *extra))
    return skill


async def run_bundled(
    name: str,
    payload: Mapping[str, Any],
    workspace: Path,
    env: Mapping[str, str],
    *,
    level: IsolationLevel = IsolationLevel.NONE,
) -> RunResult:
    """Run ``name`` with ``payload`` through the real runner, granting ``env``."""
    skill = bundled(name, env)
    runner = SkillRunner(isolation=level, limits=Limits(nproc=64))
    return await runner.run(skill, payload, workspace=workspace, secrets=env)


def failure(result: RunResult) -> str:
    """What a failed run told the user: its error and the stderr line."""
    assert not result.ok, result.output
    return f"{result.error} {result.stderr_tail}"


def gateway_for(home: Path, skill: str, values: Mapping[str, str]) -> GatewayHarness:
    """A gateway whose secrets file holds ``values``, all granted to ``skill``."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "secrets.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    path.chmod(0o600)
    grant = json.dumps({skill: sorted(values)})
    return GatewayHarness(home, env={"NEXFLOW_SKILLS__SECRETS": grant})


async def pending_card(gw: GatewayHarness) -> dict[str, Any]:
    """The first pending confirmation, once it appears."""
    async with asyncio.timeout(30):
        while True:
            pending = (await gw.http.get("/api/v1/confirmations")).json()
            if pending:
                return dict(pending[0])
            await asyncio.sleep(0.05)


async def call_skill(
    gw: GatewayHarness, name: str, payload: Mapping[str, Any], *, approve: bool | None = None
) -> tuple[dict[str, Any], str, dict[str, Any] | None]:
    """The scripted model calls ``run_skill``; a confirmation is answered with
    ``approve`` when given. Returns ``(reply, the tool message's text, the card)``."""
    gw.llm.push(Reply(tool_calls=(("run_skill", {"name": name, "input": dict(payload)}),)))
    turn = asyncio.create_task(gw.chat(f"please use {name}"))
    card = None
    if approve is not None:
        card = await pending_card(gw)
        resp = await gw.http.post(f"/api/v1/confirmations/{card['id']}", json={"approve": approve})
        assert resp.status_code == 200, resp.text
    async with asyncio.timeout(60):
        reply = await turn
    tool = next(m for m in reversed(gw.llm.requests[-1]["messages"]) if m.get("role") == "tool")
    return reply, str(tool["content"]), card


def tool_json(content: str) -> Any:
    """The JSON a skill printed, out of the (possibly framed) tool message."""
    start, end = content.find("{"), content.rfind("}")
    assert start >= 0 and end > start, content
    return json.loads(content[start : end + 1])
