"""A reload brings every card back, working: tool lines, the panel card in its current
state with buttons that run, and the confirmation card with its Confirm / Cancel buttons.
Headless Chromium against a real gateway and the scripted fake model."""

from __future__ import annotations

from playwright.async_api import Browser, Page, expect

from nexflow.bus.events import TextOut
from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness


async def say(page: Page, text: str) -> None:
    await page.fill("#input", text)
    await page.keyboard.press("Enter")


async def reload(page: Page) -> None:
    await page.reload()
    await expect(page.locator("#conn")).to_have_text("connected")


async def test_cards_come_back_after_a_reload(gateway: GatewayHarness, browser: Browser) -> None:
    page = await browser.new_page()
    await page.goto(gateway.url + "/chat")
    await expect(page.locator("#conn")).to_have_text("connected")
    # The model opens a panel (a tool call), then the panel is shown as a card.
    gateway.llm.push(Reply(tool_calls=(("panel_open", {"template": "server-monitor"}),)))
    await say(page, "open the server monitor")
    await expect(page.locator(".msg.assistant").last).to_contain_text(
        "The tool panel_open returned", timeout=30_000
    )
    await say(page, "/panel server-monitor")
    await expect(page.locator(".msg.panel")).to_contain_text("Cluster Health")
    # A dangerous skill asks for confirmation; the turn waits for the answer.
    command = {"name": "shell-run", "input": {"command": "echo reloaded"}}
    gateway.llm.push(Reply(tool_calls=(("run_skill", command),)))
    await say(page, "run my command")
    await expect(page.locator(".msg.confirm")).to_contain_text("$ echo reloaded")

    await reload(page)
    log = page.locator("#log")
    await expect(log.locator(".msg.tool").first).to_contain_text("⚙ panel_open(")
    await expect(log.locator(".msg.tool").nth(1)).to_contain_text("✓ panel_open:")
    await expect(log.locator(".msg.user").last).to_have_text("run my command")
    panel = log.locator(".msg.panel")
    await expect(panel).to_have_count(1)
    await expect(panel).to_contain_text("Cluster Health")
    confirm = log.locator(".msg.confirm")
    await expect(confirm).to_have_count(1)  # not drawn twice (timeline + socket)
    await expect(confirm).to_contain_text("$ echo reloaded")
    # The panel's buttons work after the reload.
    await panel.get_by_role("button", name="Emergency Restart").click()
    await expect(panel).to_contain_text("rebooting")
    # So do the confirmation's: the waiting turn goes on and its reply arrives.
    await confirm.get_by_role("button", name="Confirm").click()
    await expect(confirm.locator(".note")).to_have_text("✓ confirmed")
    await expect(log.locator(".msg.assistant").last).to_contain_text("reloaded", timeout=30_000)
    await page.screenshot(path=str(gateway.home / "reload-cards.png"))

    # Reloaded again: the panel card shows the state it has now, the confirmation is decided.
    await reload(page)
    await expect(log.locator(".msg.panel")).to_contain_text("rebooting")
    decided = log.locator(".msg.confirm")
    await expect(decided.locator(".note")).to_have_text("✓ confirmed")
    await expect(decided.get_by_role("button")).to_have_count(0)
    await expect(log.locator(".msg.assistant").last).to_contain_text("reloaded")
    await page.close()


async def test_a_reminder_sent_while_no_tab_was_open_is_shown_once(
    gateway: GatewayHarness, browser: Browser
) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(gateway.url + "/chat")
    await expect(page.locator("#conn")).to_have_text("connected")
    await say(page, "hello")
    await expect(page.locator(".msg.assistant").last).to_have_text("Echo: hello", timeout=30_000)
    session = await page.evaluate("sessionStorage.getItem('nexflow-session')")
    await page.close()
    assert gateway.app is not None
    out = TextOut(channel="web", chat_id=session, session_id=session, text="⏰ Reminder: stretch")
    oid = await gateway.app.outbox.post(out)
    page = await context.new_page()  # a new tab reopens the last session
    await page.goto(gateway.url + "/chat")
    await expect(page.locator("#conn")).to_have_text("connected")
    await expect(page.locator(".msg.user")).to_have_text("hello")
    reminder = page.locator(".msg.assistant", has_text="Reminder: stretch")
    await expect(reminder).to_have_count(1)
    item = None
    for _ in range(100):
        item = await gateway.app.storage.get_outbox(oid)
        if item is not None and item.status == "delivered":
            break
        await page.wait_for_timeout(50)
    assert item is not None and item.status == "delivered"  # the tab acknowledged it
    await expect(reminder).to_have_count(1)  # in the timeline and over the socket: once
    await context.close()
