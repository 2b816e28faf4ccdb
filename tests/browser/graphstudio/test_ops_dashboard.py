"""GraphStudio's dashboard in real Chromium: a log line the gateway writes appears live in
the log view and a level filter hides it; queues, usage, skills and sessions render; no
serious accessibility violation; the users and marketplace pages, also in Russian."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import structlog
from axe import axe_violations, describe
from playwright.async_api import Browser, Page, expect

from nexflow.testing.harness import GatewayHarness

pytestmark = pytest.mark.browser
DOCS = Path(__file__).resolve().parents[3] / "docs" / "graphstudio"


async def open_page(browser: Browser, url: str, locale: str = "en") -> Page:
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.add_init_script(f"localStorage.setItem('nexflow.locale', {json.dumps(locale)})")
    await page.goto(url)
    return page


async def test_dashboard_streams_logs_and_filters_by_level(
    gateway: GatewayHarness, browser: Browser
) -> None:
    await gateway.chat("hello")  # a session, a turn and model use to show
    page = await open_page(browser, gateway.url + "/#/dashboard")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await expect(page.get_by_role("heading", name="Dashboard", exact=True).last).to_be_visible()
    await expect(page.locator(".ops-conn-live")).to_be_visible(timeout=10_000)

    structlog.get_logger("ops-test").warning("ops_probe_line", session_id="probe-session-1")
    lines = page.get_by_test_id("log-lines")
    await expect(lines).to_contain_text("ops_probe_line", timeout=5_000)
    await expect(lines).to_contain_text("session probe-se")

    await page.get_by_test_id("log-level").select_option("error")
    await expect(lines).not_to_contain_text("ops_probe_line")
    await page.get_by_test_id("log-level").select_option("debug")
    await expect(lines).to_contain_text("ops_probe_line")

    # pause holds new lines until resumed
    await page.get_by_role("button", name="Pause").click()
    structlog.get_logger("ops-test").warning("ops_held_line")
    await expect(page.locator(".ops-conn")).to_contain_text("1 new line held")
    await expect(lines).not_to_contain_text("ops_held_line")
    await page.get_by_role("button", name="Resume").click()
    await expect(lines).to_contain_text("ops_held_line")

    await expect(page.locator("#ops-queues")).to_contain_text("done: 1")
    await expect(page.locator("#ops-usage svg").first).to_be_visible()
    await expect(page.locator("#ops-usage")).to_contain_text("openai/fake-model")
    await expect(page.locator("#ops-sessions li")).to_have_count(1)
    await expect(page.locator("#ops-skills")).to_be_visible()

    violations = await axe_violations(page, include=".ops-view")
    assert not violations, describe(violations)
    await page.screenshot(path=str(DOCS / "ops-dashboard.png"), full_page=True)
    assert errors == []
    await page.close()


async def test_users_page_in_russian_with_plurals_and_no_limit(
    gateway: GatewayHarness, browser: Browser
) -> None:
    await gateway.chat("привет")
    page = await open_page(browser, gateway.url + "/#/users", "ru")
    await expect(page.get_by_role("heading", name="Пользователи", exact=True)).to_be_visible()
    await expect(page.locator(".ops-head")).to_contain_text("1 пользователь")
    table = page.locator(".ops-table")
    await expect(table).to_contain_text("владелец")
    await expect(table).to_contain_text("(без лимита)")
    await expect(table).not_to_contain_text("из без")
    await expect(table).to_contain_text("Расход за 30 дней")
    await expect(table).to_contain_text("1 сессия")
    violations = await axe_violations(page, include=".ops-view")
    assert not violations, describe(violations)
    await page.screenshot(path=str(DOCS / "ops-users-ru.png"), full_page=True)
    await page.close()


async def test_users_and_marketplace_pages_in_english(
    gateway: GatewayHarness, browser: Browser
) -> None:
    await gateway.chat("hello")
    page = await open_page(browser, gateway.url + "/#/users")
    await expect(page.locator(".ops-table")).to_contain_text("owner")
    await expect(page.locator(".ops-table")).to_contain_text("(no limit)")
    violations = await axe_violations(page, include=".ops-view")
    assert not violations, describe(violations)
    await page.screenshot(path=str(DOCS / "ops-users.png"), full_page=True)

    await page.goto(gateway.url + "/#/marketplace")
    await expect(page.get_by_role("heading", name="Marketplace", exact=True).last).to_be_visible()
    await expect(page.locator("#ops-market-skill")).to_contain_text("No skills index")
    violations = await axe_violations(page, include=".ops-view")
    assert not violations, describe(violations)
    await page.close()


async def test_a_dead_letter_is_retried_from_the_dashboard(
    tmp_path: Path, browser: Browser
) -> None:
    env = {"NEXFLOW_BUS__MAX_ATTEMPTS": "2", "NEXFLOW_WEB__REPLY_TIMEOUT_S": "10"}
    async with GatewayHarness(tmp_path / "home", env=env) as gw:
        assert gw.app is not None
        orchestrator = gw.app.gateway.runner._orchestrator
        real = orchestrator.run_turn
        broken = {"on": True}

        async def flaky(event: Any, *args: Any, **kwargs: Any) -> Any:
            if broken["on"] and event.message == "boom":
                raise RuntimeError("a bug in the turn")
            return await real(event, *args, **kwargs)

        orchestrator.run_turn = flaky
        assert (await gw.chat("boom"))["error"] == "dead_letter"

        page = await open_page(browser, gw.url + "/#/dashboard")
        queues = page.locator("#ops-queues")
        await expect(queues).to_contain_text("1 dead letter")
        await expect(queues).to_contain_text("RuntimeError: a bug in the turn")
        broken["on"] = False
        await page.get_by_role("button", name="Retry dead letter").click()
        await expect(queues).to_contain_text("0 dead letters", timeout=10_000)
        letters = (await gw.http.get("/api/v1/dead-letters")).json()
        assert letters == []
        await page.close()
