"""Skills switched off by name (``skills.disabled``): listed with the reason, refused when
run, back on without a reload; and switched from the settings API as GraphStudio does."""

from __future__ import annotations

from pathlib import Path

from skills_support import write_skill

from nexflow.skills import SkillRegistry
from nexflow.skills.registry import DISABLED_REASON
from nexflow.testing.harness import GatewayHarness


def test_switched_off_skills_are_unavailable_with_the_reason(tmp_path: Path) -> None:
    write_skill(tmp_path, "greet")
    write_skill(tmp_path, "other")
    changes: list[int] = []
    registry = SkillRegistry([tmp_path], disabled=["greet"], on_change=lambda r: changes.append(1))
    registry.reload()
    assert not registry.get("greet").available
    assert registry.get("greet").reason == DISABLED_REASON
    assert [s.name for s in registry.list(available_only=True)] == ["other"]
    registry.set_disabled([])
    assert registry.get("greet").available and registry.get("greet").reason is None
    registry.reload()  # a reload keeps the switch
    registry.set_disabled(["other"])
    registry.reload()
    assert not registry.get("other").available and registry.get("greet").available
    assert len(changes) == 5  # three reloads, two switches


async def test_the_settings_api_switches_a_skill_off_and_on(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text("logging:\n  level: info\n")
    async with GatewayHarness(tmp_path / "home", config_file=config) as gw:
        listed = (await gw.http.get("/api/v1/skills")).json()
        name = next(s["name"] for s in listed if s["available"])
        saved = await gw.http.put("/api/v1/settings", json={"changes": {"skills.disabled": [name]}})
        assert saved.status_code == 200, saved.text
        assert saved.json()["applied"] == ["skills.disabled"]
        skill = next(s for s in (await gw.http.get("/api/v1/skills")).json() if s["name"] == name)
        assert skill["available"] is False and "skills.disabled" in skill["reason"]
        assert name in config.read_text()
        run = await gw.http.post(f"/api/v1/skills/{name}", json={"args": {}})
        assert run.status_code in (403, 409, 422) and "unavailable" in run.text
        await gw.http.put("/api/v1/settings", json={"changes": {"skills.disabled": []}})
        skill = next(s for s in (await gw.http.get("/api/v1/skills")).json() if s["name"] == name)
        assert skill["available"] is True
