"""Shared helpers for the ops skill tests (docker, kubectl, systemd, cloud-cli).

Runner-level helpers run a bundled skill through the real :class:`SkillRunner`; gateway
helpers start a real gateway (:class:`GatewayHarness`) with a config that grants the
skill its settings, script the model to call ``run_skill`` and answer the confirmation
card over the HTTP API, as a user would.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
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
    """``none`` plus the best sandbox this host supports (probed once per session)."""
    with tempfile.TemporaryDirectory() as tmp:
        best, _ = detect(Path(tmp))
    return [IsolationLevel.NONE] if best is IsolationLevel.NONE else [IsolationLevel.NONE, best]


LEVELS = _levels()


@contextmanager
def short_dir() -> Iterator[Path]:
    """A fresh folder with a short path: unix socket paths must stay under 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="nx")).resolve()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def host_path(*front: Path) -> str:
    return os.pathsep.join([*(str(p) for p in front), os.environ.get("PATH", os.defpath)])


def load(name: str, env: Mapping[str, str] | None = None, path: str | None = None) -> Skill:
    """The bundled skill ``name``, evaluated for a host with ``env`` and ``path``."""
    host = HostContext(env={"PATH": path or host_path(), **(env or {})})
    return evaluate(load_skill(BUNDLED / name / "SKILL.md"), host)


async def run_skill(
    name: str,
    payload: Mapping[str, Any],
    *,
    workspace: Path,
    secrets: Mapping[str, str] | None = None,
    level: IsolationLevel = IsolationLevel.NONE,
    path: str | None = None,
) -> RunResult:
    """Run bundled ``name`` through the real runner (PATH is ``path`` when given)."""
    skill = load(name, secrets, path)
    assert skill.available, skill.reason
    runner = SkillRunner(isolation=level, limits=Limits(nproc=64), path_env=path or host_path())
    return await runner.run(skill, payload, workspace=workspace, secrets=secrets)


SECTIONS = (
    "Purpose",
    "When to use",
    "How to use",
    "Input schema",
    "Output schema",
    "Examples",
    "Implementation details",
)


def check_folder(name: str, env: Mapping[str, str] | None = None, path: str | None = None) -> Skill:
    """The skill loads cleanly with all seven sections, both schemas and an effects block."""
    skill = load(name, env, path)
    assert skill.available, skill.reason
    assert skill.name == name and not skill.warnings and skill.runnable
    assert skill.emoji and skill.version and skill.author and skill.description
    assert skill.input_schema is not None and skill.output_schema is not None
    assert skill.declared_effects is not None
    headings = re.findall(r"^## (.+)$", skill.body, re.M)
    assert tuple(h for h in headings if h in SECTIONS) == SECTIONS
    return skill


def refused(result: RunResult, why: str) -> bool:
    """True when the run was refused (exit 2) with ``why`` in its message."""
    return (
        result.exit_code == 2
        and why in result.stderr_tail
        and "Traceback" not in result.stderr_tail
    )


def failed(result: RunResult, why: str) -> bool:
    return (
        result.exit_code == 1
        and why in result.stderr_tail
        and "Traceback" not in result.stderr_tail
    )


def write_setup(home: Path, secrets: Mapping[str, Mapping[str, str]]) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / "workspace").mkdir(exist_ok=True)
    values = {k: v for granted in secrets.values() for k, v in granted.items()}
    secrets_file = home / "secrets.env"
    secrets_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    secrets_file.chmod(0o600)
    grants = {skill: list(granted) for skill, granted in secrets.items()}
    config = home / "config.yml"
    config.write_text(json.dumps({"skills": {"secrets": grants, "watch": False}}))
    return config


@asynccontextmanager
async def ops_gateway(
    home: Path, secrets: Mapping[str, Mapping[str, str]]
) -> AsyncIterator[GatewayHarness]:
    """A gateway whose config grants each skill in ``secrets`` its variables; the values
    go to ``<home>/secrets.env``, as an admin would put them."""
    config = write_setup(home, secrets)
    async with GatewayHarness(home, config_file=config) as gw:
        yield gw


async def call_skill(
    gw: GatewayHarness, skill: str, payload: Mapping[str, Any], *, approve: bool | None = None
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """The model calls ``run_skill``; when ``approve`` is not None a confirmation card
    must appear and is answered over the API. Returns (chat reply, the tool message the
    model got back, the confirmation cards seen)."""
    gw.llm.push(Reply(tool_calls=(("run_skill", {"name": skill, "input": dict(payload)}),)))
    turn = asyncio.create_task(gw.chat(f"please use {skill}"))
    cards: list[dict[str, Any]] = []
    if approve is not None:
        async with asyncio.timeout(20):
            while not cards:
                assert not turn.done(), f"no confirmation was asked: {turn.result()}"
                cards = (await gw.http.get("/api/v1/confirmations")).json()
                await asyncio.sleep(0.05)
        answer = await gw.http.post(
            f"/api/v1/confirmations/{cards[0]['id']}", json={"approve": approve}
        )
        assert answer.status_code == 200, answer.text
    async with asyncio.timeout(30):
        reply = await turn
    tool_messages = [
        m for req in gw.llm.requests for m in req["messages"] if m.get("role") == "tool"
    ]
    assert tool_messages, "the model never got a tool result"
    return reply, tool_messages[-1], cards
