"""The owner approves a pairing request from the chat page."""

from pathlib import Path

from playwright.async_api import Browser, expect

from nexflow.testing.channels import running_telegram

STRANGER = 777


async def test_owner_approves_pairing_on_the_page(tmp_path: Path, browser: Browser) -> None:
    async with running_telegram(tmp_path) as (gw, fake):
        fake.message(STRANGER, "hello?")
        await fake.wait_sent(1, within=10)
        page = await browser.new_page()
        await page.goto(gw.url + "/chat")
        box = page.locator("#pairing")
        await expect(box).to_contain_text("telegram")
        await box.get_by_role("button", name="Approve").click()
        await expect(box).to_be_hidden()
        await fake.wait_for(lambda: "approved" in fake.sent[-1].text, within=10)
        fake.message(STRANGER, "now?")
        await fake.wait_for(lambda: fake.sent[-1].text == "Echo: now?", within=10)
        await page.close()
