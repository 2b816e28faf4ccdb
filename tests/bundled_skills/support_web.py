"""Helpers for the web skills' tests: run a bundled skill through the real SkillRunner,
start a real gateway that grants skills their variables, make a TLS certificate."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import ssl
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from nexflow.skills import load_skill
from nexflow.skills.eligibility import HostContext, evaluate
from nexflow.skills.isolation import IsolationLevel, detect
from nexflow.skills.limits import Limits
from nexflow.skills.model import Skill
from nexflow.skills.result import RunResult
from nexflow.skills.runner import SkillRunner
from nexflow.testing.harness import GatewayHarness

SKILLS = Path(__file__).resolve().parents[2] / "skills"


def _levels() -> list[IsolationLevel]:
    """``none`` plus the best sandbox this host supports (probed once per session)."""
    with tempfile.TemporaryDirectory() as tmp:
        best, _ = detect(Path(tmp))
    return [IsolationLevel.NONE] if best is IsolationLevel.NONE else [IsolationLevel.NONE, best]


LEVELS = _levels()


def bundled(name: str, env: Mapping[str, str] | None = None) -> Skill:
    """The bundled skill ``name``, checked available with ``env`` as the host's secrets.

    Optional settings (``env_optional``) the test grants reach the program through the
    loader's ``Skill.env_optional`` when it has one; until then they are listed with the
    required names (the gateway tests have no such bridge: see :func:`gateway`).
    """
    env = dict(env or {})
    host = HostContext(env={"PATH": os.environ.get("PATH", os.defpath), **env})
    skill = evaluate(load_skill(SKILLS / name / "SKILL.md"), host)
    assert skill.available, skill.reason
    if not hasattr(skill, "env_optional"):
        extra = tuple(n for n in optional_env(name) if n in env and n not in skill.env_required)
        skill = dataclasses.replace(skill, env_required=(*skill.env_required, *extra))
    return skill


def optional_env(name: str) -> list[str]:
    """The ``env_optional`` names the bundled SKILL.md declares."""
    text = (SKILLS / name / "SKILL.md").read_text(encoding="utf-8")
    return list(yaml.safe_load(text.split("---", 2)[1]).get("env_optional") or [])


def need_optional_env(name: str) -> None:
    """Fail, before anything runs, when skill ``name`` declares ``env_optional`` settings
    that the loader does not read: the gateway would not pass them, and the skill would
    go to its public default endpoint instead of the loopback fake."""
    wanted = optional_env(name)
    have = getattr(load_skill(SKILLS / name / "SKILL.md"), "env_optional", None)
    if wanted and (have is None or set(wanted) - set(have)):
        pytest.fail(
            f"{name} declares env_optional {wanted}, but Skill.env_optional is {have!r}: "
            "the gateway would not pass those settings to the program"
        )


async def run_skill(
    tmp_path: Path,
    name: str,
    payload: Mapping[str, Any],
    secrets: Mapping[str, str] | None = None,
    *,
    level: IsolationLevel = IsolationLevel.NONE,
    host_env: Mapping[str, str] | None = None,
) -> RunResult:
    """Run bundled skill ``name`` as the gateway would, granting ``secrets``.

    ``host_env`` (default: ``secrets``) is what the host offers, for eligibility.
    """
    workspace = tmp_path / "workspace"
    workspace.mkdir(exist_ok=True)
    runner = SkillRunner(isolation=level, limits=Limits(nproc=64))
    skill = bundled(name, secrets if host_env is None else host_env)
    return await runner.run(skill, payload, workspace=workspace.resolve(), secrets=secrets)


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


@asynccontextmanager
async def gateway(tmp_path: Path, grants: Mapping[str, Mapping[str, str]]) -> AsyncIterator[Any]:
    """A real gateway whose config grants each skill in ``grants`` its variables.

    The values go in the home's ``secrets.env`` (mode 600), the grants in
    ``skills.secrets`` of a config file, as an admin would set them.
    """
    for name in grants:
        need_optional_env(name)
    home = tmp_path / "home"
    home.mkdir()
    secrets = home / "secrets.env"
    values = {k: v for env in grants.values() for k, v in env.items()}
    secrets.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    secrets.chmod(0o600)
    config = tmp_path / "config.yml"
    names = {skill: sorted(env) for skill, env in grants.items()}
    config.write_text(yaml.safe_dump({"skills": {"secrets": names}}))
    async with GatewayHarness(home, config_file=config) as gw:
        yield gw


async def pending_card(gw: GatewayHarness) -> dict[str, Any]:
    """The one confirmation card waiting for the user (polled over the HTTP API)."""
    deadline = time.monotonic() + 30
    while not (cards := (await gw.http.get("/api/v1/confirmations")).json()):
        assert time.monotonic() < deadline, "no confirmation was asked"
        await asyncio.sleep(0.05)
    assert len(cards) == 1, cards
    card: dict[str, Any] = cards[0]
    return card


def last_tool_message(gw: GatewayHarness) -> dict[str, Any]:
    """The tool result the model was sent last (the scripted model's last request)."""
    message: dict[str, Any] = gw.llm.requests[-1]["messages"][-1]
    assert message["role"] == "tool", message
    return message


_FRAME = re.compile(
    r'^<tool_output name="[^"]*" trust="(\w+)" id="(\w+)">\n(.*)\n</tool_output id="\2">$', re.S
)


def tool_output(gw: GatewayHarness) -> tuple[str, Any]:
    """``(trust, JSON value)`` of the last tool result, unwrapped from its frame."""
    content = last_tool_message(gw)["content"]
    found = _FRAME.match(content)
    assert found, content
    return found.group(1), json.loads(found.group(3))


@dataclass(frozen=True)
class Cert:
    """A self-signed certificate for 127.0.0.1 and the contexts to serve and trust it."""

    server: ssl.SSLContext
    client: ssl.SSLContext
    days: int


def make_cert(folder: Path, days: int = 30) -> Cert:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
            "-days", str(days), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return Cert(server, client, days)
