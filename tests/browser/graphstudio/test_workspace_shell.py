"""The workspace's layout and shell in real Chromium: a change made in one tab (or by
the API, as the AI's tool calls are) appears live in another; panels moved to a new area,
resized by keyboard and by drag, the layout restored after a reload; tabs mode; a new
workspace from the switcher; the UI in Russian; the phone layout; axe on each."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from axe import axe_violations, describe
from playwright.async_api import Browser, Page, expect

from nexflow.testing.harness import GatewayHarness

pytestmark = pytest.mark.browser
DOCS = Path(__file__).resolve().parents[3] / "docs" / "graphstudio"


async def open_workspace(
    browser: Browser, gw: GatewayHarness, lang: str = "en", width: int = 1280
) -> Page:
    page = await browser.new_page(viewport={"width": width, "height": 860})
    key = "nexflow.locale"  # set once: a later switch of the language survives reloads
    await page.add_init_script(
        f"if (!localStorage.getItem('{key}')) localStorage.setItem('{key}', '{lang}')"
    )
    await page.goto(gw.url + "/#/w/default")
    await expect(page.locator(".workspace .ws-toolbar")).to_be_visible()
    return page


async def new_panel(gw: GatewayHarness, template: str) -> str:
    r = await gw.http.post("/api/v1/panels", json={"template": template})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def no_violations(page: Page) -> None:
    found = await axe_violations(page)
    assert found == [], describe(found)


async def test_a_change_in_one_tab_appears_live_in_another(
    gateway: GatewayHarness, browser: Browser
) -> None:
    todo = await new_panel(gateway, "todo")
    one = await open_workspace(browser, gateway)
    two = await open_workspace(browser, gateway)
    for page in (one, two):
        await expect(page.locator("article[data-template='todo']")).to_be_visible(timeout=30_000)
        await expect(page.get_by_test_id("connection")).to_have_text("Live")
    box = one.get_by_placeholder("New item, then Enter")
    await box.fill("typed in tab one")
    await box.press("Enter")
    await expect(two.get_by_role("checkbox", name="typed in tab one")).to_be_visible()
    # the AI's tool calls go through the same tools: here through the API
    started = time.perf_counter()
    r = await gateway.http.post(
        f"/api/v1/panels/{todo}/tools/add_item", json={"text": "from the AI"}
    )
    assert r.json()["ok"]
    for page in (one, two):
        await expect(page.get_by_role("checkbox", name="from the AI")).to_be_visible()
    elapsed = time.perf_counter() - started
    assert elapsed < 3, f"the live update took {elapsed:.2f}s"
    # a panel the AI creates in this workspace joins the layout live
    await new_panel(gateway, "notes")
    await expect(two.get_by_role("tab", name="Notes")).to_be_visible(timeout=15_000)
    await one.close()
    await two.close()


async def test_layout_moved_resized_and_restored(gateway: GatewayHarness, browser: Browser) -> None:
    await new_panel(gateway, "todo")
    notes = await new_panel(gateway, "notes")
    page = await open_workspace(browser, gateway)
    await expect(page.get_by_role("tab")).to_have_count(2, timeout=30_000)
    await page.get_by_role("tab", name="Notes").click()
    await page.get_by_label("Move “Notes”").select_option("new")
    await expect(page.locator(".area")).to_have_count(2)
    splitter = page.get_by_role("separator", name="Resize areas")
    await expect(splitter).to_have_attribute("aria-valuenow", "50")
    await splitter.focus()
    await page.keyboard.press("ArrowRight")
    await page.keyboard.press("ArrowRight")
    await expect(splitter).to_have_attribute("aria-valuenow", "60")
    box = await splitter.bounding_box()
    assert box is not None
    await page.mouse.move(box["x"] + 4, box["y"] + 40)
    await page.mouse.down()
    await page.mouse.move(box["x"] - 120, box["y"] + 40, steps=6)
    await page.mouse.up()
    dragged = int(await splitter.get_attribute("aria-valuenow") or 0)
    assert 40 <= dragged < 60
    await page.screenshot(path=str(DOCS / "workspace-tiles.png"))
    await no_violations(page)

    async def saved() -> dict[str, Any]:
        return dict((await gateway.http.get("/api/v1/workspaces/default/layout")).json())

    for _ in range(50):  # the layout is saved debounced
        layout = await saved()
        if len(layout["areas"]) == 2 and layout["areas"][0]["size"] == dragged / 100:
            break
        await page.wait_for_timeout(100)
    assert layout["areas"][1]["panels"] == [notes]
    await page.reload()
    await expect(page.locator(".area")).to_have_count(2, timeout=30_000)
    await expect(page.get_by_role("separator")).to_have_attribute("aria-valuenow", str(dragged))
    # tabs mode: one strip with both panels, kept after a reload as well
    await page.get_by_role("button", name="Tabs").click()
    await expect(page.locator(".area")).to_have_count(1)
    await expect(page.get_by_role("tab")).to_have_count(2)
    await page.wait_for_timeout(600)
    await page.reload()
    await expect(page.get_by_role("button", name="Tabs")).to_have_attribute("aria-pressed", "true")
    # close a panel: it stays in the workspace, the library shows it again
    await page.get_by_role("tab", name="Notes").click()
    await page.get_by_role("button", name="Close “Notes”").click()
    await expect(page.get_by_role("tab")).to_have_count(1)
    await page.locator(".ws-toolbar").get_by_role("button", name="Add panel").click()
    await page.get_by_role("dialog").get_by_role("button", name="Show “Notes”").click()
    await expect(page.get_by_role("tab")).to_have_count(2)
    await page.close()


async def test_new_workspace_russian_and_phone(gateway: GatewayHarness, browser: Browser) -> None:
    await new_panel(gateway, "todo")
    page = await open_workspace(browser, gateway)
    await page.get_by_role("button", name="New workspace").click()
    await page.get_by_label("Name of the new workspace").fill("research")
    await page.get_by_role("button", name="Create").click()
    await expect(page).to_have_url(f"{gateway.url}/#/w/research")
    await expect(page.get_by_role("heading", name="Workspace research")).to_be_visible()
    await expect(page.locator(".ws-empty")).to_be_visible()
    names = [w["name"] for w in (await gateway.http.get("/api/v1/workspaces")).json()]
    assert names == ["default", "research"]
    await page.get_by_label("Workspace", exact=True).select_option("default")
    await expect(page.locator("article[data-template='todo']")).to_be_visible(timeout=30_000)

    await page.get_by_role("button", name="RU").click()
    await expect(page.locator("html")).to_have_attribute("lang", "ru")
    await expect(page.get_by_role("link", name="Рабочая область")).to_be_visible()
    await expect(page.get_by_role("button", name="Добавить панель").first).to_be_visible()
    await page.reload()
    await expect(page.locator("html")).to_have_attribute("lang", "ru")
    await expect(page.get_by_role("heading", name="Рабочая область default")).to_be_visible()
    await expect(page.get_by_text("Пока ничего нет.")).to_be_visible(timeout=30_000)
    await no_violations(page)
    await page.screenshot(path=str(DOCS / "workspace-ru.png"))
    await page.close()

    phone = await open_workspace(browser, gateway, lang="en", width=390)
    await expect(phone.locator("article[data-template='todo']")).to_be_visible(timeout=30_000)
    nav = phone.get_by_role("navigation", name="Main")
    await expect(nav).to_be_hidden()
    await phone.get_by_role("button", name="Menu").click()
    await expect(nav).to_be_visible()
    await nav.get_by_role("link", name="Patches").click()
    await expect(phone).to_have_url(f"{gateway.url}/#/patches")
    await expect(nav).to_be_hidden()
    await phone.go_back()
    box = phone.get_by_placeholder("New item, then Enter")
    await box.fill("on the phone")
    await box.press("Enter")
    await expect(phone.get_by_role("checkbox", name="on the phone")).to_be_visible()
    await no_violations(phone)
    await phone.screenshot(path=str(DOCS / "workspace-phone.png"))
    await phone.close()
