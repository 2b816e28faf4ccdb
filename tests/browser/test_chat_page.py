"""The chat page in headless Chromium: type, watch the reply stream in, see the banner."""

from pathlib import Path

from playwright.async_api import Browser, expect

from nexflow.testing.harness import GatewayHarness


async def test_chat_round_trip_with_tool(gateway: GatewayHarness, browser: Browser) -> None:
    page = await browser.new_page()
    await page.goto(gateway.url + "/chat")
    await expect(page.locator("#conn")).to_have_text("connected")
    await expect(page.locator("#model")).to_contain_text("openai/fake-model")
    await expect(page.locator("#banner")).to_be_hidden()
    await page.fill("#input", "what time is it?")
    await page.keyboard.press("Enter")
    await expect(page.locator(".msg.user")).to_have_text("what time is it?")
    # The first model call waits for litellm's import (seconds on a loaded machine).
    await expect(page.locator(".msg.tool").first).to_contain_text("get_time", timeout=30_000)
    reply = page.locator(".msg.assistant").last
    await expect(reply).to_contain_text("The tool get_time returned:")
    # A reload shows the same conversation from the stored history.
    await page.reload()
    await expect(page.locator(".msg.assistant").last).to_contain_text("get_time returned")
    await page.close()


async def test_banner_explains_missing_model(tmp_path: Path, browser: Browser) -> None:
    async with GatewayHarness(tmp_path, with_llm=False) as gw:
        page = await browser.new_page()
        await page.goto(gw.url + "/chat")
        banner = page.locator("#banner")
        await expect(banner).to_be_visible()
        await expect(banner).to_contain_text("NEXFLOW_LLM_MODEL")
        await expect(page.locator("#conn")).to_have_text("connected")
        await page.fill("#input", "hello?")
        await page.keyboard.press("Enter")
        await expect(page.locator(".msg.assistant").last).to_contain_text("No language model")
        await page.screenshot(path=str(tmp_path / "no-model.png"))
        await page.close()


async def test_panel_card_button_runs_the_handler(
    gateway: GatewayHarness, browser: Browser
) -> None:
    page = await browser.new_page()
    await page.goto(gateway.url + "/chat")
    await expect(page.locator("#conn")).to_have_text("connected")
    await page.fill("#input", "/panel new server-monitor")
    await page.keyboard.press("Enter")
    card = page.locator(".msg.panel").last
    await expect(card).to_contain_text("Cluster Health")
    await card.get_by_role("button", name="Emergency Restart").click()
    await expect(card).to_contain_text("rebooting")
    await page.screenshot(path=str(gateway.home / "panel.png"))
    await page.close()
