"""The page's language follows the user: ``/lang ru`` in the assistant switches the UI at
once, and a browser that never chose a language opens in the one the user set in a chat."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from nexflow.testing.harness import GatewayHarness

pytestmark = pytest.mark.browser


async def test_lang_command_switches_the_page_and_new_browsers_follow(
    gateway: GatewayHarness, browser: Browser
) -> None:
    context = await browser.new_context(locale="en-US")
    page = await context.new_page()
    await page.goto(gateway.url + "/#/assistant")
    box = page.locator(".as-view").get_by_role("textbox").last
    await expect(box).to_be_focused()
    await box.fill("/lang ru")
    await box.press("Enter")
    await expect(page.locator("html")).to_have_attribute("lang", "ru")
    await expect(
        page.get_by_role("navigation").get_by_role("link", name="Ассистент")
    ).to_be_visible()
    await expect(page.locator(".as-view")).to_contain_text("русск", timeout=30_000)  # the reply
    await context.close()

    fresh = await browser.new_context(locale="en-US")
    page = await fresh.new_page()
    await page.goto(gateway.url + "/#/dashboard")
    await expect(page.locator("html")).to_have_attribute("lang", "ru")
    await expect(
        page.get_by_role("navigation").get_by_role("link", name="Настройки")
    ).to_be_visible()
    await fresh.close()
