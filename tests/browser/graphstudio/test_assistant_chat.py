"""The assistant in GraphStudio (``#/assistant``), headless Chromium against a real gateway
and the scripted fake model: a streamed reply with its tool line in plain words, Stop
during a streamed reply, a conversation resumed after a reload with its cards, the
conversation list and its search, the Russian UI and an axe check."""

from __future__ import annotations

from pathlib import Path

import pytest
from axe import axe_violations, describe
from playwright.async_api import Browser, Locator, Page, expect

from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness

pytestmark = pytest.mark.browser
DOCS = Path(__file__).resolve().parents[3] / "docs" / "graphstudio"
PARTIAL = "Let me look at the clock first."


async def open_assistant(gateway: GatewayHarness, page: Page, session: str = "") -> None:
    await page.goto(f"{gateway.url}/#/assistant/{session}")
    await expect(page.locator("#as-input")).to_be_focused()  # focused at load


async def say(page: Page, text: str) -> None:
    await page.fill("#as-input", text)
    await page.keyboard.press("Enter")


def log(page: Page) -> Locator:
    return page.get_by_test_id("as-log")


async def test_streamed_reply_tool_labels_and_stop(
    gateway: GatewayHarness, browser: Browser
) -> None:
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await open_assistant(gateway, page)
    await say(page, "hello there")
    await expect(log(page).locator(".as-assistant").last).to_have_text(
        "Assistant: Echo: hello there", timeout=30_000
    )
    assert "#/assistant/" in page.url and not page.url.endswith("#/assistant/")
    # Shift+Enter is a new line, not a send.
    await page.fill("#as-input", "line one")
    await page.keyboard.press("Shift+Enter")
    await page.keyboard.type("line two")
    assert await page.input_value("#as-input") == "line one\nline two"
    await page.fill("#as-input", "")

    # A slow turn: text streams, a tool runs, then the model hangs; Stop ends it.
    gateway.llm.push(Reply(text=PARTIAL, tool_calls=(("get_time", {}),)))
    gateway.llm.push(Reply(text="never shown", delay_s=8))
    await say(page, "what time is it, slowly")
    await expect(log(page).locator(".as-tool").first).to_have_text("⚙ Clock: current time")
    await expect(log(page)).to_contain_text(PARTIAL)
    stop = page.get_by_role("button", name="Stop")
    await expect(stop).to_be_visible()
    await expect(page.get_by_role("button", name="Send")).to_be_enabled()
    await stop.click()
    await expect(log(page).locator(".as-stopped")).to_have_text("Stopped.")
    await expect(stop).to_be_hidden()
    await expect(log(page)).not_to_contain_text("never shown")
    # The next message works normally.
    await say(page, "and now?")
    await expect(log(page).locator(".as-assistant").last).to_have_text(
        "Assistant: Echo: and now?", timeout=30_000
    )
    assert "{" not in await log(page).locator(".as-tool").first.inner_text()
    # Replies are Markdown, sanitised.
    gateway.llm.push(Reply(text="**Done**, see `notes.md`.<script>alert(1)</script>"))
    await say(page, "format it")
    last = log(page).locator(".as-assistant").last
    await expect(last.locator("strong")).to_have_text("Done")
    await expect(last.locator("code")).to_have_text("notes.md")
    assert await last.locator("script").count() == 0
    await page.screenshot(path=str(DOCS / "assistant-chat.png"))
    violations = await axe_violations(
        page, include=".as-view"
    )  # the shell is checked by its own tests
    assert violations == [], describe(violations)
    assert errors == []
    await page.close()


async def test_a_conversation_comes_back_after_a_reload_with_its_cards(
    gateway: GatewayHarness, browser: Browser
) -> None:
    page = await browser.new_page()
    await open_assistant(gateway, page)
    await say(page, "/panel new todo")
    panel = log(page).locator(".as-panel")
    await expect(panel).to_have_count(1, timeout=30_000)
    await expect(panel.get_by_role("link", name="Open panel")).to_be_visible()
    # The AI adds an item through the panel's tool: the tool line says so in plain words.
    tools = await gateway.owner_tools()
    (add,) = [t for t in tools if t.endswith("__todo__add_item")]
    gateway.llm.push(Reply(tool_calls=((add, {"text": "milk"}),)))
    await say(page, "add milk to my list")
    await expect(log(page).locator(".as-tool").first).to_have_text(
        "⚙ To-do: add item “milk”", timeout=30_000
    )
    # The panel card updates live (the /ws/events stream), without a reload.
    await expect(panel).to_contain_text("milk", timeout=10_000)
    # A dangerous skill asks for confirmation.
    command = {"name": "shell-run", "input": {"command": "echo reloaded"}}
    gateway.llm.push(Reply(tool_calls=(("run_skill", command),)))
    await say(page, "run my command")
    confirm = log(page).locator(".as-confirm")
    await expect(confirm).to_contain_text("echo reloaded", timeout=30_000)
    url = page.url

    await page.reload()
    await expect(page).to_have_url(url)
    await expect(log(page).locator(".as-user").first).to_have_text("You: /panel new todo")
    await expect(log(page).locator(".as-tool").first).to_have_text("⚙ To-do: add item “milk”")
    await expect(log(page).locator(".as-panel")).to_have_count(1)
    await expect(log(page).locator(".as-panel")).to_contain_text("milk")
    confirm = log(page).locator(".as-confirm")
    await expect(confirm).to_have_count(1)  # not drawn twice (timeline + socket)
    await confirm.get_by_role("button", name="Confirm").click()
    await expect(confirm.locator(".as-note")).to_have_text("✓ Confirmed")
    await expect(log(page).locator(".as-assistant").last).to_contain_text(
        "reloaded", timeout=30_000
    )

    # The conversation list: titled by the first message, searchable.
    sessions = page.get_by_role("navigation", name="Conversations")
    await expect(sessions.locator("a[aria-current='page']")).to_contain_text("/panel new todo")
    await page.get_by_role("button", name="New conversation").click()
    await expect(page.locator("#as-input")).to_be_focused()
    await say(page, "a different topic")
    await expect(log(page).locator(".as-assistant").last).to_contain_text(
        "Echo: a different topic", timeout=30_000
    )
    await expect(sessions.locator("li")).to_have_count(2)
    await page.fill("#as-search", "milk")
    await expect(sessions.locator("li")).to_have_count(1)
    await expect(sessions.locator("li")).to_contain_text("/panel new todo")
    await sessions.locator("li a").click()
    await expect(log(page).locator(".as-panel")).to_have_count(1)
    await log(page).locator(".as-panel").scroll_into_view_if_needed()
    await page.screenshot(path=str(DOCS / "assistant-cards.png"))
    violations = await axe_violations(
        page, include=".as-view"
    )  # the shell is checked by its own tests
    assert violations == [], describe(violations)
    await page.close()


async def test_the_assistant_in_russian_and_on_a_phone(
    gateway: GatewayHarness, browser: Browser
) -> None:
    context = await browser.new_context(locale="ru-RU", viewport={"width": 390, "height": 760})
    page = await context.new_page()
    await open_assistant(gateway, page)
    await expect(page.get_by_role("button", name="Новая беседа")).to_be_visible()
    await expect(page.get_by_role("button", name="Отправить")).to_be_in_viewport()
    await say(page, "привет")
    await expect(log(page).locator(".as-assistant").last).to_have_text(
        "Ассистент: Echo: привет", timeout=30_000
    )
    await expect(page.get_by_role("navigation", name="Беседы")).to_contain_text("2 сообщения")
    await expect(page.get_by_role("button", name="Отправить")).to_be_in_viewport()
    # Tool lines follow the session's language (/lang ru).
    await say(page, "/lang ru")
    await expect(log(page).locator(".as-assistant").last).to_contain_text("Язык: русский.")
    gateway.llm.push(Reply(tool_calls=(("get_time", {}),)))
    await say(page, "который час?")
    await expect(log(page).locator(".as-tool").first).to_have_text(
        "⚙ Часы: текущее время", timeout=30_000
    )
    await expect(log(page).locator(".as-result").first).to_contain_text("готово")
    await page.screenshot(path=str(DOCS / "assistant-ru-phone.png"))
    violations = await axe_violations(
        page, include=".as-view"
    )  # the shell is checked by its own tests
    assert violations == [], describe(violations)
    await context.close()
