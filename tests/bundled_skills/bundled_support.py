"""Shared helpers for the bundled-skill tests (one module name across ``tests/``: tests are
not packages).

- the skill as the loader and the host see it: :func:`load`, :func:`bundled`,
  :func:`check_folder` (SKILL.md loads cleanly, seven sections, both schemas, effects);
- a run through the real :class:`SkillRunner` granting settings: :func:`run_skill`, and
  what a refused (exit 2) or failed (exit 1) run said: :func:`refusal`, :func:`failure`;
- a real gateway (:class:`GatewayHarness`) whose config grants skills their settings
  (:func:`skill_gateway`), the scripted model calling ``run_skill`` and the confirmation
  card answered over the HTTP API as a user would (:func:`call_skill`, or its parts
  :func:`start_turn`, :func:`pending_card`, :func:`answer`), and the framed tool result
  the model got back (:func:`framed`, :func:`tool_json`).

Fixtures (``level``, ``workspace``, ``home``) are in this folder's ``conftest.py``.
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
from typing import Any, NamedTuple

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

SECTIONS = (
    "Purpose",
    "When to use",
    "How to use",
    "Input schema",
    "Output schema",
    "Examples",
    "Implementation details",
)


def _levels() -> list[IsolationLevel]:
    with tempfile.TemporaryDirectory() as tmp:
        best, _ = detect(Path(tmp))
    return [IsolationLevel.NONE] if best is IsolationLevel.NONE else [IsolationLevel.NONE, best]


LEVELS = _levels()
"""``none`` plus the best sandbox this host supports (probed once per session)."""


@contextmanager
def short_dir() -> Iterator[Path]:
    """A fresh folder with a short path: unix socket paths must stay under 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="nx")).resolve()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def host_path(*front: Path) -> str:
    """The test's PATH with ``front`` folders first."""
    return os.pathsep.join([*(str(p) for p in front), os.environ.get("PATH", os.defpath)])


# -- the skill as loaded -----------------------------------------------------------------


def load(name: str, env: Mapping[str, str] | None = None, path: str | None = None) -> Skill:
    """The bundled skill ``name``, evaluated for a host offering ``env`` (PATH: ``path``)."""
    host = HostContext(env={"PATH": path or host_path(), **(env or {})})
    return evaluate(load_skill(BUNDLED / name / "SKILL.md"), host)


def bundled(name: str, env: Mapping[str, str] | None = None, path: str | None = None) -> Skill:
    """:func:`load`, checked available."""
    skill = load(name, env, path)
    assert skill.available, skill.reason
    return skill


def check_folder(name: str, env: Mapping[str, str] | None = None, path: str | None = None) -> Skill:
    """The skill loads cleanly with all seven sections (once each, in order), both schemas
    and an effects block."""
    skill = bundled(name, env, path)
    assert skill.load_error is None and not skill.warnings
    assert skill.name == name and skill.runnable
    assert skill.emoji and skill.version and skill.author and skill.description
    assert skill.input_schema is not None and skill.output_schema is not None
    assert skill.declared_effects is not None
    headings = re.findall(r"^## (.+)$", skill.body, re.M)
    assert tuple(h for h in headings if h in SECTIONS) == SECTIONS
    return skill


# -- runs through the real runner --------------------------------------------------------


def make_runner(
    level: IsolationLevel = IsolationLevel.NONE, path: str | None = None
) -> SkillRunner:
    return SkillRunner(isolation=level, limits=Limits(nproc=64), path_env=path)


async def run_skill(
    name: str,
    payload: Mapping[str, Any],
    workspace: Path,
    secrets: Mapping[str, str] | None = None,
    *,
    level: IsolationLevel = IsolationLevel.NONE,
    path: str | None = None,
    host_env: Mapping[str, str] | None = None,
) -> RunResult:
    """Run bundled ``name`` as the gateway would, granting ``secrets`` (required and
    optional settings alike). ``host_env`` (default: ``secrets``) is what the host offers,
    for eligibility; ``path`` is PATH for both the host and the program."""
    skill = bundled(name, secrets if host_env is None else host_env, path)
    runner = make_runner(level, path)
    return await runner.run(skill, payload, workspace=workspace, secrets=secrets)


def refusal(result: RunResult) -> str:
    """The one-line reason of a refused run (exit 2), checked to be no traceback."""
    assert not result.ok and result.exit_code == 2, (result.exit_code, result.stderr_tail)
    assert "Traceback" not in result.stderr_tail
    return result.stderr_tail


def failure(result: RunResult) -> str:
    """The one-line reason of a failed run (exit 1), checked to be no traceback."""
    assert not result.ok and result.exit_code == 1, (result.exit_code, result.stderr_tail)
    assert "Traceback" not in result.stderr_tail
    return result.stderr_tail


# -- through the gateway -----------------------------------------------------------------


@asynccontextmanager
async def skill_gateway(
    home: Path, grants: Mapping[str, Mapping[str, str]]
) -> AsyncIterator[GatewayHarness]:
    """A real gateway whose config grants each skill in ``grants`` its settings.

    The values go to ``<home>/secrets.env`` (mode 600), the grants to ``skills.secrets``
    of a config file, as an admin would set them.
    """
    (home / "workspace").mkdir(parents=True, exist_ok=True)
    values = {k: v for granted in grants.values() for k, v in granted.items()}
    secrets = home / "secrets.env"
    secrets.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    secrets.chmod(0o600)
    names = {skill: sorted(granted) for skill, granted in grants.items()}
    config = home / "config.yml"
    config.write_text(json.dumps({"skills": {"secrets": names, "watch": False}}))
    async with GatewayHarness(home, config_file=config) as gw:
        yield gw


class SkillCall(NamedTuple):
    """One ``run_skill`` call through the gateway."""

    reply: dict[str, Any]
    """The chat reply."""
    tool: str
    """The tool message the model got back (framed)."""
    card: dict[str, Any] | None
    """The confirmation card that was answered, if one was."""


def start_turn(gw: GatewayHarness, name: str, payload: Mapping[str, Any]) -> asyncio.Task[Any]:
    """The scripted model will call ``run_skill``; the user's turn runs in a task."""
    gw.llm.push(Reply(tool_calls=(("run_skill", {"name": name, "input": dict(payload)}),)))
    return asyncio.create_task(gw.chat(f"please use {name}"))


async def pending_card(gw: GatewayHarness, turn: asyncio.Task[Any]) -> dict[str, Any]:
    """The one confirmation card waiting for the user (polled over the HTTP API)."""
    async with asyncio.timeout(30):
        while not (cards := (await gw.http.get("/api/v1/confirmations")).json()):
            assert not turn.done(), f"no confirmation was asked: {turn.result()}"
            await asyncio.sleep(0.05)
    assert len(cards) == 1, cards
    return dict(cards[0])


async def answer(gw: GatewayHarness, card: Mapping[str, Any], *, approve: bool) -> None:
    resp = await gw.http.post(f"/api/v1/confirmations/{card['id']}", json={"approve": approve})
    assert resp.status_code == 200, resp.text
    assert resp.json()["outcome"] == ("approved" if approve else "declined")


def last_tool_message(gw: GatewayHarness) -> str:
    """The tool result the model was sent last (the scripted model's last request)."""
    message: dict[str, Any] = gw.llm.requests[-1]["messages"][-1]
    assert message["role"] == "tool", message
    return str(message["content"])


async def call_skill(
    gw: GatewayHarness, name: str, payload: Mapping[str, Any], *, approve: bool | None = None
) -> SkillCall:
    """The scripted model calls ``run_skill``; when ``approve`` is not None a confirmation
    card must appear, and is answered with it."""
    turn = start_turn(gw, name, payload)
    card = None
    if approve is not None:
        card = await pending_card(gw, turn)
        await answer(gw, card, approve=approve)
    async with asyncio.timeout(60):
        reply = await turn
    return SkillCall(reply, last_tool_message(gw), card)


_FRAME = re.compile(
    r'^<tool_output name="[^"]*" trust="(\w+)" id="(\w+)">\n(.*)\n</tool_output id="\2">$', re.S
)


def framed(tool: str) -> tuple[str, Any]:
    """``(trust, JSON value)`` of a tool message, unwrapped from its frame."""
    found = _FRAME.match(tool)
    assert found, tool
    return found.group(1), json.loads(found.group(3))


def tool_json(tool: str) -> Any:
    """The JSON a skill printed, out of the framed tool message."""
    return framed(tool)[1]
