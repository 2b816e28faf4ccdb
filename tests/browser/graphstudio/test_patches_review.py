"""Patch review in GraphStudio (``#/patches/<id>``), headless Chromium against a real
gateway: a sync makes patches; the review shows each one's changes side by side (state
keys, the file's lines before and after); Accept merges, Reject rejects, a second patch
on the same lines is explained as a conflict; the patch card in the assistant links here;
Russian UI; an axe check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from axe import axe_violations, describe
from playwright.async_api import Browser, Page, expect

from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness

pytestmark = pytest.mark.browser
DOCS = Path(__file__).resolve().parents[3] / "docs" / "graphstudio"


def sync_reply(title: str) -> Reply:
    note = {"title": title, "body": "from the to-do list"}
    change = {"target": "panel:notes", "summary": f"Add {title}", "append": {"notes": [note]}}
    return Reply(text=json.dumps({"changes": [change]}))


async def make_patch(gateway: GatewayHarness, item: str) -> dict[str, Any]:
    """A todo item, then a sync of the todo panel: one patch for the notes panel."""
    await gateway.http.post("/api/v1/panels/todo/tools/add_item", json={"text": item})
    gateway.llm.push(sync_reply(item))
    resp = await gateway.http.post("/api/v1/panels/todo/sync")
    assert resp.status_code == 200, resp.text
    (made,) = resp.json()["patches"]
    return dict(made)


async def panels(gateway: GatewayHarness) -> None:
    session = (await gateway.chat("/panel new notes"))["session"]
    await gateway.chat("/panel new todo", session=session)


async def review(page: Page, gateway: GatewayHarness, patch_id: str) -> None:
    await page.goto(f"{gateway.url}/#/patches/{patch_id}")
    await expect(page.locator(f"article[data-patch='{patch_id}']")).to_be_visible()


async def test_accept_and_reject_with_the_side_by_side_diff(
    gateway: GatewayHarness, browser: Browser
) -> None:
    await panels(gateway)
    first = await make_patch(gateway, "buy milk")
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{gateway.url}/#/patches")
    listed = page.get_by_role("link", name="Add buy milk")
    await expect(listed).to_be_visible()
    await listed.click()
    article = page.locator(f"article[data-patch='{first['id']}']")
    await expect(article.get_by_role("heading", level=2)).to_be_focused()  # keyboard: lands here
    await expect(article.locator(".pt-keys")).to_contain_text("notes")
    table = article.locator("table.pt-sbs").first
    await expect(table.get_by_role("columnheader", name="Before")).to_be_visible()
    await expect(table.get_by_role("columnheader", name="After")).to_be_visible()
    await expect(table.locator("td.pt-code.add").first).to_be_visible()
    await expect(table.locator("td.pt-code.add", has_text="buy milk").first).to_be_visible()
    await page.screenshot(path=str(DOCS / "patches-review.png"), full_page=True)
    violations = await axe_violations(page, include=".pt-view")
    assert violations == [], describe(violations)
    # Keyboard: Tab to Accept and press it.
    accept = article.get_by_role("button", name="Accept")
    await accept.focus()
    await page.keyboard.press("Enter")
    await expect(article.locator(".pt-outcome")).to_have_text("✓ Accepted: merged into main.")
    await expect(article.get_by_test_id("pt-status")).to_have_text("Merged")
    await expect(accept).to_be_hidden()
    notes = (await gateway.http.get("/api/v1/panels/notes")).json()["state"]["notes"]
    assert [n["title"] for n in notes] == ["buy milk"]

    second = await make_patch(gateway, "call Bob")
    await review(page, gateway, second["id"])
    article = page.locator(f"article[data-patch='{second['id']}']")
    await expect(article.locator("td.pt-code.add", has_text="call Bob").first).to_be_visible()
    await article.get_by_role("button", name="Reject").click()
    await expect(article.locator(".pt-outcome")).to_have_text("✗ Rejected.")
    got = (await gateway.http.get(f"/api/v1/patches/{second['id']}")).json()
    assert got["status"] == "rejected"
    # The list's filter shows it among the rejected ones.
    await page.select_option("#pt-status", "rejected")
    await expect(page.locator(".pt-list li")).to_have_count(1)
    assert errors == []
    await page.close()


async def test_a_conflict_is_explained(gateway: GatewayHarness, browser: Browser) -> None:
    await panels(gateway)
    first = await make_patch(gateway, "one")
    second = await make_patch(gateway, "two")
    assert (await gateway.http.post(f"/api/v1/patches/{first['id']}/accept")).json()[
        "status"
    ] == "merged"
    page = await browser.new_page()
    await review(page, gateway, second["id"])
    article = page.locator(f"article[data-patch='{second['id']}']")
    await article.get_by_role("button", name="Accept").click()
    outcome = article.locator(".pt-outcome")
    await expect(outcome).to_be_visible()
    status = (await gateway.http.get(f"/api/v1/patches/{second['id']}")).json()
    assert status["status"] == "conflict"  # both changed the state key ``notes``
    await expect(outcome).to_contain_text("conflicts with main")
    conflict = article.locator(".pt-conflict")
    await expect(conflict).to_contain_text("state key(s) notes changed on main meanwhile")
    await expect(conflict).to_contain_text("sync the panel again")
    await expect(article.get_by_test_id("pt-status")).to_have_text("Conflict")
    await page.screenshot(path=str(DOCS / "patches-conflict.png"), full_page=True)
    await article.get_by_role("button", name="Reject").click()
    await expect(article.locator(".pt-outcome")).to_have_text("✗ Rejected.")
    await page.close()


async def test_the_review_in_russian_from_the_assistants_patch_card(
    gateway: GatewayHarness, browser: Browser
) -> None:
    context = await browser.new_context(locale="ru-RU")
    page = await context.new_page()
    await panels(gateway)
    await gateway.http.post("/api/v1/panels/todo/tools/add_item", json={"text": "молоко"})
    gateway.llm.push(sync_reply("молоко"))
    await page.goto(f"{gateway.url}/#/assistant")
    await page.fill("#as-input", "/sync todo")
    await page.keyboard.press("Enter")
    card = page.get_by_test_id("as-log").locator(".as-patch")
    await expect(card).to_contain_text("молоко", timeout=30_000)
    await card.get_by_role("link", name="Сравнить рядом").click()
    article = page.locator("article.pt-patch")
    await expect(article.get_by_role("columnheader", name="После").first).to_be_visible()
    await expect(article.get_by_role("button", name="Принять")).to_be_visible()
    await expect(page.get_by_role("heading", name="Патчи")).to_be_visible()
    await page.screenshot(path=str(DOCS / "patches-review-ru.png"), full_page=True)
    violations = await axe_violations(page, include=".pt-view")
    assert violations == [], describe(violations)
    await article.get_by_role("button", name="Принять").click()
    await expect(article.locator(".pt-outcome")).to_have_text("✓ Принят: влит в main.")
    await context.close()
