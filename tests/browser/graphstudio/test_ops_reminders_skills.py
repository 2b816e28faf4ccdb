"""The dashboard's reminders (listed, cancelled) and skills (switched off and on by the
owner: the skill list follows and a run is refused), in real Chromium."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from axe import axe_violations, describe
from playwright.async_api import Browser, expect

from nexflow.tasks.model import ReminderTarget
from nexflow.testing.harness import GatewayHarness

pytestmark = pytest.mark.browser


async def test_reminders_are_listed_and_cancelled(
    gateway: GatewayHarness, browser: Browser
) -> None:
    assert gateway.app is not None
    assert (await gateway.http.get("/api/v1/reminders")).json() == []  # the owner exists
    found = await gateway.app.storage.find_user("web", "owner")
    assert found is not None
    target = ReminderTarget(found[0], "web", "owner", "")
    await gateway.app.reminders.add_in(target, "water the plants", timedelta(hours=3))
    await gateway.app.reminders.add_cron(target, "weekly report", "0 9 * * 1")

    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.add_init_script("localStorage.setItem('nexflow.locale', 'en')")
    await page.goto(gateway.url + "/#/dashboard")
    card = page.locator("#ops-reminders")
    await expect(card.locator("li")).to_have_count(2)
    await expect(card).to_contain_text("repeats (0 9 * * 1)")
    await card.get_by_role("button", name="Cancel reminder “water the plants”").click()
    await expect(card.locator("li")).to_have_count(1)
    listed = (await gateway.http.get("/api/v1/reminders")).json()
    assert [r["text"] for r in listed] == ["weekly report"]
    violations = await axe_violations(page)
    assert violations == [], describe(violations)
    await page.close()


async def test_the_owner_switches_a_skill_off_and_on(tmp_path: Path, browser: Browser) -> None:
    config = tmp_path / "config.yml"
    config.write_text("logging:\n  level: info\n")
    async with GatewayHarness(tmp_path / "home", config_file=config) as gw:
        skills = (await gw.http.get("/api/v1/skills")).json()
        name = next(s["name"] for s in skills if s["available"])
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await page.add_init_script("localStorage.setItem('nexflow.locale', 'en')")
        await page.goto(gw.url + "/#/dashboard")
        card = page.locator("#ops-skills")
        await card.get_by_role("button", name=f"Switch off {name}").click()
        await expect(card.get_by_role("button", name=f"Switch on {name}")).to_be_visible()
        skill = next(s for s in (await gw.http.get("/api/v1/skills")).json() if s["name"] == name)
        assert skill["available"] is False
        run = await gw.http.post(f"/api/v1/skills/{name}", json={"args": {}})
        assert "unavailable" in run.text  # refused when run, not only hidden
        assert name in config.read_text()
        await card.get_by_role("button", name=f"Switch on {name}").click()
        await expect(card.get_by_role("button", name=f"Switch off {name}")).to_be_visible()
        skill = next(s for s in (await gw.http.get("/api/v1/skills")).json() if s["name"] == name)
        assert skill["available"] is True
        await page.close()
