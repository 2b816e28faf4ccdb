"""A panel's review loop in the workspace, in real Chromium: opened by its link
(``#/w/<workspace>/<panel>``, the chat cards' "Open panel"), its history listed and an older
version restored (the state follows live), Sync answered in plain words when the model gives
nothing usable, and the assistant docked beside the panels."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from axe import axe_violations, describe
from playwright.async_api import Browser, expect

from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness
from nexflow.workspace.sync_reply import TOOL_NAME as PROPOSE

pytestmark = pytest.mark.browser
DOCS = Path(__file__).resolve().parents[3] / "docs" / "graphstudio"


async def history_of(gw: GatewayHarness, panel_id: str, at_least: int) -> list[dict[str, str]]:
    """The panel's commits once the workspace mirror has written ``at_least`` of them."""
    for _ in range(150):
        commits = (await gw.http.get(f"/api/v1/panels/{panel_id}/history")).json()
        if len(commits) >= at_least:
            return list(commits)
        await asyncio.sleep(0.1)
    raise AssertionError(f"the panel has {len(commits)} commits, not {at_least}")


async def test_open_by_link_history_restore_and_sync(
    gateway: GatewayHarness, browser: Browser
) -> None:
    panel = (await gateway.http.post("/api/v1/panels", json={"template": "todo"})).json()
    pid = panel["id"]
    await history_of(gateway, pid, 1)
    added = await gateway.http.post(f"/api/v1/panels/{pid}/tools/add_item", json={"text": "milk"})
    assert added.json()["ok"] is True
    await history_of(gateway, pid, 2)

    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.add_init_script("localStorage.setItem('nexflow.locale', 'en')")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{gateway.url}/#/w/default/{pid}")
    article = page.locator(f"article[data-panel='{pid}']")
    await expect(article).to_be_visible(timeout=30_000)
    await expect(article.locator("h2")).to_be_focused()
    await expect(article.get_by_role("checkbox", name="milk")).to_be_visible()

    # History: the newest version first; restoring the one before "milk" empties the list.
    await article.get_by_role("button", name="History of").click()
    history = article.get_by_role("list", name="History of")
    await expect(history.locator("li")).to_have_count(2)
    await history.get_by_role("button", name="Restore version").first.click()
    await expect(article.get_by_text("restored")).to_be_visible()
    await expect(article.get_by_role("checkbox", name="milk")).to_have_count(0, timeout=10_000)
    assert (await gateway.http.get(f"/api/v1/panels/{pid}")).json()["state"]["items"] == []

    # Sync with a model that only chats: a clear message, no patch, no server error.
    await article.get_by_role("button", name="Sync").click()
    note = article.locator(".panel-review [role=status] p")
    await expect(note).to_be_visible(timeout=30_000)
    text = await note.inner_text()
    assert text.strip() and "500" not in text and "502" not in text

    # The assistant, docked beside the panels, answers there.
    await page.get_by_role("button", name="Assistant", exact=True).click()
    dock = page.locator(".ws-dock")
    box = dock.get_by_role("textbox")
    await expect(box).to_be_visible()
    await box.fill("hello from the dock")
    await box.press("Enter")
    await expect(dock.get_by_text("hello from the dock").first).to_be_visible()
    violations = await axe_violations(page)
    assert violations == [], describe(violations)
    assert errors == []
    await page.close()


async def test_sync_patch_review_and_accept_from_the_panel(
    gateway: GatewayHarness, browser: Browser
) -> None:
    """The seed's loop through the UI: a panel's Sync → the model proposes a change by its
    tool → "1 patch proposed. Review" → the side-by-side diff → Accept → the other panel
    shows the change live; a second sync's patch is rejected and changes nothing."""
    for template in ("todo", "notes"):
        made = await gateway.http.post("/api/v1/panels", json={"template": template})
        assert made.status_code == 201
    note = {"title": "Ship 1.2", "body": "From the to-do list"}
    change = {"target": "panel:notes", "summary": "Note: ship 1.2", "append": {"notes": [note]}}
    gateway.llm.push(Reply(tool_calls=((PROPOSE, {"changes": [change]}),)))

    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.add_init_script("localStorage.setItem('nexflow.locale', 'en')")
    await page.goto(f"{gateway.url}/#/w/default/todo")
    todo = page.locator("article[data-panel='todo']")
    await expect(todo).to_be_visible(timeout=30_000)
    await todo.get_by_role("button", name="Sync").click()
    await expect(todo.locator(".panel-review")).to_contain_text("1 patch proposed.")
    await todo.get_by_role("link", name="Review").click()

    patch = page.locator("article.pt-patch")
    await expect(patch).to_be_visible()
    await expect(patch.get_by_role("columnheader", name="After").first).to_be_visible()
    await expect(patch).to_contain_text("Ship 1.2")
    await patch.get_by_role("button", name="Accept").click()
    await expect(patch).to_have_attribute("data-status", "merged")
    state = (await gateway.http.get("/api/v1/panels/notes")).json()["state"]
    assert [n["title"] for n in state["notes"]] == ["Ship 1.2"]
    await page.screenshot(path=str(DOCS / "patches-from-sync.png"))

    # Back in the workspace, the notes panel shows the accepted note.
    await page.goto(f"{gateway.url}/#/w/default/notes")
    await expect(page.locator("article[data-panel='notes']")).to_contain_text("Ship 1.2")

    # A second proposal, rejected: nothing changes.
    again = {**change, "summary": "Note: ship 1.3", "append": {"notes": [{"title": "Ship 1.3"}]}}
    gateway.llm.push(Reply(tool_calls=((PROPOSE, {"changes": [again]}),)))
    await page.goto(f"{gateway.url}/#/w/default/todo")
    todo = page.locator("article[data-panel='todo']")
    await todo.get_by_role("button", name="Sync").click()
    await todo.get_by_role("link", name="Review").click()
    await expect(page.locator("article.pt-patch")).to_contain_text("Ship 1.3")
    await page.locator("article.pt-patch").get_by_role("button", name="Reject").click()
    await expect(page.locator("article.pt-patch")).to_have_attribute("data-status", "rejected")
    state = (await gateway.http.get("/api/v1/panels/notes")).json()["state"]
    assert [n["title"] for n in state["notes"]] == ["Ship 1.2"]
    await page.close()
