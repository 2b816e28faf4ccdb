"""Patch review in headless Chromium: the Sync button of a panel card, the patch card's
Accept button in the chat page, and Reject on the /patches page."""

from __future__ import annotations

import json

from playwright.async_api import Browser, Page, expect

from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness


def sync_reply(title: str) -> Reply:
    note = {"title": title, "body": "from the to-do list"}
    change = {"target": "panel:notes", "summary": f"Add {title}", "append": {"notes": [note]}}
    return Reply(text=json.dumps({"changes": [change]}))


async def say(page: Page, text: str) -> None:
    await page.fill("#input", text)
    await page.keyboard.press("Enter")


async def open_panels(gateway: GatewayHarness, page: Page) -> None:
    await page.goto(gateway.url + "/chat")
    await expect(page.locator("#conn")).to_have_text("connected")
    await say(page, "/panel new notes")
    await expect(page.locator(".msg.panel")).to_have_count(1)
    await say(page, "/panel new todo")
    await expect(page.locator(".msg.panel")).to_have_count(2)


async def test_sync_button_then_accept_on_the_patch_card(
    gateway: GatewayHarness, browser: Browser
) -> None:
    page = await browser.new_page()
    await open_panels(gateway, page)
    await gateway.http.post("/api/v1/panels/todo/tools/add_item", json={"text": "buy milk"})
    gateway.llm.push(sync_reply("buy milk"))
    todo = page.locator(".msg.panel").last
    await todo.get_by_role("button", name="⟳ Sync").click()
    await expect(page.locator(".msg.user").last).to_have_text("/sync todo")
    card = page.locator(".msg.patch")
    await expect(card).to_contain_text("Add buy milk", timeout=30_000)  # the first model call
    await expect(card).to_contain_text("state keys changed: notes")
    await expect(card.locator(".diff-add").first).to_be_visible()
    await card.get_by_role("button", name="Accept").click()
    await expect(card.locator(".note")).to_contain_text("merged into main")
    notes = (await gateway.http.get("/api/v1/panels/notes")).json()["state"]["notes"]
    assert [n["title"] for n in notes] == ["buy milk"]
    await page.screenshot(path=str(gateway.home / "patch-card.png"))
    await page.close()


async def test_reject_on_the_patches_page(gateway: GatewayHarness, browser: Browser) -> None:
    page = await browser.new_page()
    await open_panels(gateway, page)
    await gateway.http.post("/api/v1/panels/todo/tools/add_item", json={"text": "call Bob"})
    gateway.llm.push(sync_reply("call Bob"))
    (made,) = (await gateway.http.post("/api/v1/panels/todo/sync")).json()["patches"]
    await page.goto(f"{gateway.url}/patches#{made['id']}")
    box = page.locator(f"section.patch[id='{made['id']}']")
    await expect(box).to_have_class("patch focus")
    await expect(box).to_contain_text("Add call Bob")
    await expect(box.locator("pre")).to_contain_text("call Bob")
    await box.get_by_role("button", name="Reject").click()
    await expect(box.locator(".note")).to_have_text("✗ rejected")
    assert (await gateway.http.get(f"/api/v1/patches/{made['id']}")).json()["status"] == "rejected"
    await page.select_option("#status", "rejected")
    await expect(page.locator("section.patch")).to_have_count(1)
    await page.close()
