"""The bundled systemd skill with fake systemctl/journalctl executables first on PATH."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bundled_support import (
    call_skill,
    check_folder,
    failure,
    host_path,
    load,
    refusal,
    run_skill,
    skill_gateway,
)
from fakes_ops_bin import FakeBin, fake_systemd, units

from nexflow.skills.isolation import IsolationLevel
from nexflow.skills.result import RunResult


@pytest.fixture
def fake(workspace: Path) -> FakeBin:
    # Inside the workspace: the sandbox hides /tmp but binds the workspace back.
    return fake_systemd(workspace / ".bin")


async def systemd(fake: FakeBin, ws: Path, payload: dict[str, Any], **kw: Any) -> RunResult:
    return await run_skill("systemd", payload, ws, path=host_path(fake.folder), **kw)


async def test_status_of_units(fake: FakeBin, workspace: Path, level: IsolationLevel) -> None:
    r = await systemd(
        fake, workspace, {"action": "status", "units": ["nginx", "ghost"]}, level=level
    )
    assert r.ok, (r.error, r.stderr_tail)
    assert r.data is not None
    nginx, ghost = r.data["units"]
    assert nginx == {
        "unit": "nginx.service",
        "description": "A high performance web server",
        "load": "loaded",
        "active": "active",
        "sub": "running",
        "enabled": "enabled",
        "main_pid": 812,
        "restarts": 0,
        "result": "success",
        "since": "Sat 2026-12-05 08:00:00 UTC",
        "memory_bytes": 52428800,
    }
    assert ghost["load"] == "not-found" and ghost["unit"] == "ghost.service"
    argv = fake.calls()[-1]
    assert argv[1] == "show" and argv[-3:] == ["--", "nginx", "ghost"]
    assert any(a.startswith("--property=Id,Description,") for a in argv)


async def test_list_failed_units(fake: FakeBin, workspace: Path) -> None:
    r = await systemd(fake, workspace, {"action": "list", "state": "failed"})
    assert r.ok and r.data is not None
    assert r.data["units"] == [
        {
            "unit": "backup.service",
            "load": "loaded",
            "active": "failed",
            "sub": "failed",
            "description": "Nightly backup",
        }
    ]
    assert "--state=failed" in fake.calls()[-1] and "--type=service" in fake.calls()[-1]


async def test_journal_lines(fake: FakeBin, workspace: Path) -> None:
    r = await systemd(fake, workspace, {"action": "journal", "unit": "nginx", "lines": 3})
    assert r.ok and r.data is not None
    messages = [e["message"] for e in r.data["entries"]]
    assert messages == ["request 28 served", "request 29 served", "café error"]
    last = r.data["entries"][-1]
    assert last["priority"] == "err" and last["pid"] == 812 and last["unit"] == "nginx.service"
    assert last["time"] == "2025-12-05T10:00:40+00:00"
    payload = {"action": "journal", "unit": "nginx", "priority": "err", "since": "-1h"}
    r = await systemd(fake, workspace, payload)
    assert r.data is not None and [e["message"] for e in r.data["entries"]] == ["café error"]
    argv = fake.calls()[-1]
    assert argv[0].endswith("journalctl")
    assert {"--output=json", "--unit=nginx", "--priority=err", "--since=-1h"} <= set(argv)


async def test_restart_stop_start(fake: FakeBin, workspace: Path) -> None:
    r = await systemd(fake, workspace, {"action": "restart", "unit": "nginx"})
    assert r.ok and r.data is not None
    assert r.data["result"] == "done" and r.data["status"]["restarts"] == 1
    assert fake.calls()[-2][1:] == ["restart", "--no-pager", "--no-ask-password", "--", "nginx"]
    r = await systemd(fake, workspace, {"action": "stop", "unit": "nginx.service"})
    assert r.ok and r.data is not None and r.data["status"]["active"] == "inactive"
    r = await systemd(fake, workspace, {"action": "start", "unit": "nginx"})
    assert r.ok and units(fake)["nginx.service"]["ActiveState"] == "active"
    r = await systemd(fake, workspace, {"action": "restart", "unit": "nope"})
    said = failure(r)
    assert "systemctl restart: Failed to restart nope.service: Unit nope.service not found." in said


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"action": "status", "unit": "--all"}, "starts with '-'"),
        ({"action": "restart", "unit": "-H"}, "starts with '-'"),
        ({"action": "restart", "unit": "nginx; reboot"}, "not a valid name"),
        ({"action": "journal", "unit": "nginx", "since": "1h; rm -rf /"}, "'since' must be"),
        ({"action": "journal", "unit": "nginx", "priority": "loud"}, "'priority' must be"),
        ({"action": "journal", "unit": "nginx", "lines": 5000}, "between 1 and 1000"),
        ({"action": "status", "units": []}, "1 to 20 unit names"),
        ({"action": "list", "pattern": "-x"}, "starts with '-'"),
        ({"action": "list", "type": "device; ls"}, "'type' must be one of"),
    ],
)
async def test_bad_input_is_refused(
    fake: FakeBin, workspace: Path, payload: dict[str, Any], why: str
) -> None:
    r = await systemd(fake, workspace, payload)
    assert why in refusal(r)
    assert fake.calls() == []


def test_skill_folder(fake: FakeBin) -> None:
    skill = check_folder("systemd", path=host_path(fake.folder))
    assert skill.requirements.bins == ("systemctl", "journalctl")
    effects = skill.declared_effects
    assert effects is not None
    for action in ("restart", "stop", "start"):
        assert effects.for_input({"action": action, "unit": "x"}).confirm
    for action in ("status", "list", "journal"):
        call = effects.for_input({"action": action})
        assert not (call.confirm or call.writes or call.egress)
    assert effects.for_input({"action": "journal"}).untrusted_output


def test_missing_binary_makes_it_unavailable(workspace: Path) -> None:
    only_systemctl = fake_systemd(workspace / "half", with_journalctl=False)
    skill = load("systemd", path=str(only_systemctl.folder))
    assert not skill.available
    assert "missing binary on PATH: journalctl" in (skill.reason or "")
    skill = load("systemd", path=str(workspace / "nothing-here"))
    assert "missing binary on PATH: systemctl, journalctl" in (skill.reason or "")
    assert load("systemd", path=host_path(fake_systemd(workspace / "full").folder)).available


# -- through the gateway ----------------------------------------------------------------


@pytest.mark.parametrize("approve", [True, False], ids=["confirmed", "declined"])
async def test_restart_through_the_gateway(
    home: Path, approve: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = fake_systemd(home / "workspace" / ".bin")
    monkeypatch.setenv("PATH", host_path(fake.folder))
    async with skill_gateway(home, {}) as gw:
        _, status_tool, card = await call_skill(
            gw, "systemd", {"action": "status", "unit": "nginx"}
        )
        assert card is None and "A high performance web server" in status_tool
        payload = {"action": "restart", "unit": "nginx"}
        _, tool, card = await call_skill(gw, "systemd", payload, approve=approve)
    assert card is not None and "restart" in card["detail"]
    restarts = [argv for argv in fake.calls() if "restart" in argv]
    if approve:
        assert len(restarts) == 1 and units(fake)["nginx.service"]["NRestarts"] == 1
        assert '"result": "done"' in tool
    else:
        assert restarts == [] and units(fake)["nginx.service"]["NRestarts"] == "0"
        assert "declined" in tool
