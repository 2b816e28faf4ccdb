"""The workspace in real Chromium: every bundled template added from the panel library,
hydrated from its render tree and used (typing, Enter, checkboxes, switches, buttons
with a confirmation), toasts announced, tool errors shown inline, and no serious axe
violation with every component type on screen."""

from __future__ import annotations

from pathlib import Path

import pytest
from axe import axe_violations, describe
from playwright.async_api import Browser, Page, expect

from nexflow.testing.harness import GatewayHarness

pytestmark = pytest.mark.browser
DOCS = Path(__file__).resolve().parents[3] / "docs" / "graphstudio"


PAGE_ERRORS: dict[int, list[str]] = {}


async def open_workspace(browser: Browser, gw: GatewayHarness, lang: str = "en") -> Page:
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.add_init_script(f"localStorage.setItem('nexflow.locale', '{lang}')")
    errors = PAGE_ERRORS.setdefault(id(page), [])
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda d: d.accept())  # Action confirm="..." questions
    await page.goto(gw.url + "/#/w/default")
    await expect(page.locator(".workspace .ws-toolbar")).to_be_visible()
    await expect(page.get_by_test_id("connection")).to_have_text(
        "Live" if lang == "en" else "В сети"
    )
    return page


async def add(page: Page, template: str) -> None:
    await page.locator(".ws-toolbar").get_by_role("button", name="Add panel").click()
    dialog = page.get_by_role("dialog", name="Panel library")
    await expect(dialog).to_be_visible()
    await dialog.locator(f"button[data-template='{template}']").click()
    await expect(dialog).to_be_hidden()
    # the first panel also loads the sandbox (its bindings are evaluated there)
    await expect(page.locator(f"article[data-template='{template}']")).to_be_visible(timeout=30_000)


async def test_every_template_rendered_and_interactive(
    gateway: GatewayHarness, browser: Browser
) -> None:
    page = await open_workspace(browser, gateway)
    await expect(page.locator(".ws-empty")).to_be_visible()

    # to-do: type + Enter adds, the checkbox toggles, the toast of clear_done is announced
    await add(page, "todo")
    todo = page.locator("article[data-template='todo']")
    box = todo.get_by_placeholder("New item, then Enter")
    await box.fill("milk")
    await box.press("Enter")
    await expect(todo.get_by_role("checkbox", name="milk")).to_be_visible()
    await expect(box).to_have_value("")
    await todo.get_by_role("checkbox", name="milk").click()  # checked once the tool ran
    await expect(todo.get_by_role("checkbox", name="milk")).to_be_checked()
    await expect(todo.locator(".c-metric").nth(1)).to_contain_text("1")
    await todo.get_by_role("button", name="Clear finished").click()
    await expect(page.locator(".toasts")).to_contain_text("Removed 1 item(s)")
    await expect(todo.get_by_text("No items yet.")).to_be_visible()
    # a tool error is shown inline: an empty item is refused by the handler
    await box.press("Enter")
    await expect(todo.get_by_role("alert")).to_contain_text("an item needs some text")
    await notes_and_the_rest(page, gateway)
    assert PAGE_ERRORS[id(page)] == []
    await page.close()


async def notes_and_the_rest(page: Page, gateway: GatewayHarness) -> None:
    todo = page.locator("article[data-template='todo']")

    # notes: a new note is listed, opened and rendered as Markdown
    await add(page, "notes")
    notes = page.locator("article[data-template='notes']")
    await notes.get_by_label("New note").fill("Plan")
    await notes.get_by_label("New note").press("Enter")
    await expect(notes.get_by_role("button", name="Plan")).to_be_visible()
    await expect(notes.locator(".c-metric")).to_contain_text("1")

    # dashboard: the maintenance switch runs set_maintenance with the new value
    await add(page, "dashboard")
    dash = page.locator("article[data-template='dashboard']")
    switch = dash.get_by_role("switch", name="Maintenance mode")
    await expect(switch).to_have_attribute("aria-checked", "false")
    await switch.click()
    await expect(switch).to_have_attribute("aria-checked", "true")
    await expect(dash.locator(".badge")).to_have_text("on")

    # server monitor: the danger button, its toast, the badge follows the state
    await add(page, "server-monitor")
    mon = page.locator("article[data-template='server-monitor']")
    await mon.get_by_role("button", name="Emergency Restart").click()
    await expect(mon.locator(".badge")).to_have_text("rebooting")
    await expect(page.locator(".toasts")).to_contain_text("Restart sequence initiated")

    # CI pipeline: a confirmed Cancel; table, chart and log stream rendered
    await add(page, "ci-pipeline")
    ci = page.locator("article[data-template='ci-pipeline']")
    await ci.get_by_role("button", name="Cancel").click()
    await expect(ci.locator(".badge")).to_have_text("canceled")
    await expect(ci.locator("[data-type='LogStream']")).to_be_visible()
    await expect(ci.locator("[data-type='Diagram']")).to_be_visible()

    # flowchart: the Diagram and the actions around it
    await add(page, "flowchart")
    flow = page.locator("article[data-template='flowchart']")
    await expect(flow.locator("[data-type='Diagram']")).to_be_visible()
    await flow.get_by_role("button", name="Left to right").click()
    direction = None
    for _ in range(50):  # the click's tool call, seen through the API
        panels = (await gateway.http.get("/api/v1/panels")).json()
        chart = next(p for p in panels if p["template"] == "flowchart")
        direction = chart["state"].get("direction")
        if direction == "LR":
            break
        await page.wait_for_timeout(100)
    assert direction == "LR"

    # six tabs in the one area; switching tabs by keyboard
    tabs = page.get_by_role("tab")
    await expect(tabs).to_have_count(6)
    await tabs.nth(5).focus()
    await page.keyboard.press("Home")
    await expect(todo).to_be_visible()
    found = await axe_violations(page)
    assert found == [], describe(found)
    await page.screenshot(path=str(DOCS / "workspace-panels.png"))


async def test_panels_updated_by_the_api_show_without_reload(
    gateway: GatewayHarness, browser: Browser
) -> None:
    """What the AI does through panel tools arrives live; a layout saved over the API
    (two areas) is the one the page opens with."""
    http = gateway.http
    dash = (await http.post("/api/v1/panels", json={"template": "dashboard"})).json()["id"]
    ci = (await http.post("/api/v1/panels", json={"template": "ci-pipeline"})).json()["id"]
    layout = {
        "version": 1,
        "mode": "tile",
        "areas": [
            {"id": "left", "panels": [dash], "active": dash, "size": 0.5},
            {"id": "right", "panels": [ci], "active": ci, "size": 0.5},
        ],
    }
    assert (await http.put("/api/v1/workspaces/default/layout", json=layout)).status_code == 200
    page = await open_workspace(browser, gateway)
    board = page.locator("article[data-template='dashboard']")
    pipeline = page.locator("article[data-template='ci-pipeline']")
    await expect(board).to_be_visible(timeout=30_000)  # the first render loads the sandbox
    await expect(pipeline).to_be_visible()
    await expect(page.locator(".area")).to_have_count(2)
    for latency in (120, 180, 150, 210, 160):
        sample = {"requests": 1200, "errors": 30, "latency_p95": latency}
        r = await http.post(f"/api/v1/panels/{dash}/tools/record_sample", json=sample)
        assert r.json()["ok"], r.text
    endpoints = [
        {"path": "/api/orders", "rpm": 800, "errors": 12, "p95": 140},
        {"path": "/api/users", "rpm": 400, "errors": 18, "p95": 210},
    ]
    await http.post(f"/api/v1/panels/{dash}/tools/set_endpoints", json={"endpoints": endpoints})
    jobs = [("compile", "build", "passed", 42), ("unit", "test", "failed", 95)]
    jobs += [("lint", "test", "passed", 18)]
    for name, stage, status, seconds in jobs:
        args = {"name": name, "stage": stage, "status": status, "seconds": seconds}
        await http.post(f"/api/v1/panels/{ci}/tools/report_job", json=args)
    await expect(board.locator(".c-metric").first).to_contain_text("1200")
    await expect(board.locator(".c-chart svg polyline")).to_have_count(1)
    await expect(board.get_by_role("cell", name="/api/users")).to_be_visible()
    await expect(pipeline.locator(".badge")).to_have_text("failed")
    await expect(pipeline.locator(".c-chart svg rect")).to_have_count(3)
    await expect(pipeline.locator(".log-line.level-error")).to_have_text(
        "[error] test/unit: failed"
    )
    # the log filter works locally
    await pipeline.get_by_label("Filter lines").fill("lint")
    await expect(pipeline.locator(".log-line")).to_have_count(1)
    found = await axe_violations(page)
    assert found == [], describe(found)
    await page.set_viewport_size({"width": 1280, "height": 1180})
    await page.screenshot(path=str(DOCS / "workspace-live.png"))
    assert PAGE_ERRORS[id(page)] == []
    await page.close()
