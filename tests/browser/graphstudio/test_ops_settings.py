"""GraphStudio's settings page in real Chromium: a bad value is refused with the config
loader's own message beside its field and the file is left as it was; a valid one is
written and reported as needing a restart; a live key (logging) is applied at once;
secrets show only as set / not set."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from axe import axe_violations, describe
from playwright.async_api import Browser, expect

from nexflow.config.edit import ConfigFile
from nexflow.testing.harness import GatewayHarness

pytestmark = pytest.mark.browser
DOCS = Path(__file__).resolve().parents[3] / "docs" / "graphstudio"
SECRET = "sk-browser-never-shown-123"


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[GatewayHarness]:
    path = tmp_path / "config.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "memory": {"paging": False},
                "budgets": {"per_user_daily_tokens": 1000},
                "llm": {"models": {"main": {"model": "openai/other", "api_key": SECRET}}},
                "security": {"channels": {"telegram": {"policy": "pairing"}}},
            }
        )
    )
    async with GatewayHarness(tmp_path / "home", config_file=path) as harness:
        assert harness.app is not None
        harness.app.web.state.config_file = ConfigFile(path, {"NEXFLOW_HOME": str(harness.home)})
        yield harness


async def test_settings_refuse_a_bad_value_and_save_a_good_one(
    gw: GatewayHarness, browser: Browser
) -> None:
    path = gw.app.web.state.config_file.path  # type: ignore[union-attr]
    before = path.read_text()
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.add_init_script("localStorage.setItem('nexflow.locale', 'en')")
    await page.goto(gw.url + "/#/settings")
    budgets = page.locator("#set-budgets")
    field = budgets.locator("#set-budgets-per_user_daily_tokens")
    await expect(field).to_have_value("1000")
    assert SECRET not in await page.content()
    await expect(page.locator("#set-llm-models-main-api_key-state")).to_have_text("set")
    await expect(page.locator("#set-web-token-state")).to_have_text("not set")

    await field.fill("-5")
    await budgets.get_by_role("button", name="Save").first.click()
    error = budgets.locator(".ops-field-error")
    await expect(error).to_have_text(
        "Input should be greater than or equal to 0 — the value is too small"
    )
    await expect(field).to_have_attribute("aria-invalid", "true")
    assert path.read_text() == before

    await field.fill("2500")
    await budgets.get_by_role("button", name="Save").first.click()
    await expect(budgets.get_by_role("status")).to_contain_text(
        "Takes effect after a restart: budgets.per_user_daily_tokens"
    )
    await expect(error).to_have_count(0)
    assert yaml.safe_load(path.read_text())["budgets"]["per_user_daily_tokens"] == 2500
    assert yaml.safe_load(path.read_text())["llm"]["models"]["main"]["api_key"] == SECRET

    logging = page.locator("#set-logging")
    await logging.locator("#set-logging-level").select_option("debug")
    await logging.get_by_role("button", name="Save").click()
    await expect(logging.get_by_role("status")).to_have_text("Saved and applied.")

    await page.reload()
    await expect(field).to_have_value("2500")
    await expect(page.locator(".ops-note")).to_contain_text("budgets.per_user_daily_tokens")
    violations = await axe_violations(page, include=".ops-view")
    assert not violations, describe(violations)
    await page.screenshot(path=str(DOCS / "ops-settings.png"), full_page=True)
    await page.close()


async def test_settings_in_russian(gw: GatewayHarness, browser: Browser) -> None:
    page = await browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    await page.add_init_script("localStorage.setItem('nexflow.locale', 'ru')")
    await page.goto(gw.url + "/#/settings")
    await expect(page.locator("#set-budgets")).to_contain_text("Дневной лимит на пользователя")
    await expect(page.locator("#set-web-token-state")).to_have_text("не задан")
    field = page.locator("#set-budgets-per_user_daily_tokens")
    await field.fill("много")
    await page.locator("#set-budgets").get_by_role("button", name="Сохранить").first.click()
    await expect(page.locator("#set-budgets .ops-field-error")).to_contain_text(
        "Input should be a valid integer"
    )
    violations = await axe_violations(page, include=".ops-view")
    assert not violations, describe(violations)
    await page.screenshot(path=str(DOCS / "ops-settings-ru-phone.png"), full_page=True)
    await page.close()
