"""The flowchart editor in Chromium: a node dragged, two nodes connected handle to handle,
a node renamed and an arrow labelled and deleted in one tab — each checked in the panel's
state over the API and seen live in a second tab — then the same kind of change made by the
AI (the fake model calling the panel's tool in chat) appearing live in both tabs, with the
viewport kept. Axe on the flowchart panel; screenshots for docs/graphstudio/flowchart.md."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from axe import axe_violations, describe
from playwright.async_api import Browser, Locator, Page, expect

from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parents[3] / "docs" / "graphstudio"
ARROW = "\u2192"
EDGE = f".react-flow__edge[data-id='end{ARROW}review-draft']"
SLOW = 30_000  # the first render compiles the panel sandbox


async def state(gw: GatewayHarness, panel: str) -> dict[str, Any]:
    body: dict[str, Any] = (await gw.http.get(f"/api/v1/panels/{panel}")).json()
    return dict(body["state"])


async def eventually(gw: GatewayHarness, panel: str, check: Any) -> None:
    """Wait until ``check(state)`` holds (a tool call from the page is asynchronous)."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        current = await state(gw, panel)
        if check(current):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"state never matched: {current}")
        await asyncio.sleep(0.1)


async def moves(loc: Locator, before: tuple[float, float]) -> None:
    """Wait until ``loc`` is drawn somewhere else than ``before`` (a live update)."""
    for _ in range(50):
        if await center(loc) != before:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the node did not move")


def node(page: Page, node_id: str) -> Locator:
    return page.locator(f".react-flow__node[data-id='{node_id}']")


async def center(loc: Locator) -> tuple[float, float]:
    box = await loc.bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


async def drag(page: Page, source: Locator, to: tuple[float, float]) -> None:
    x, y = await center(source)
    await page.mouse.move(x, y)
    await page.mouse.down()
    await page.mouse.move(to[0], to[1], steps=12)
    await page.mouse.up()


async def open_workspace(gw: GatewayHarness, browser: Browser) -> Page:
    page = await browser.new_page(viewport={"width": 1280, "height": 1000})
    page.on("console", lambda m: print("console:", m.text))
    await page.goto(gw.url + "/#/w/default")
    try:
        await expect(page.locator(".react-flow__node")).to_have_count(2, timeout=SLOW)
    except AssertionError:
        print((await page.locator("body").inner_text())[:2000])
        raise
    return page


async def flowchart(gw: GatewayHarness) -> str:
    """A flowchart panel, shown alone in the default workspace's layout."""
    made = await gw.http.post("/api/v1/panels", json={"template": "flowchart"})
    assert made.status_code == 201, made.text
    panel = str(made.json()["id"])
    area = {"id": "a1", "panels": [panel], "active": panel, "size": 1}
    layout = {"version": 1, "mode": "tile", "areas": [area]}
    saved = await gw.http.put("/api/v1/workspaces/default/layout", json=layout)
    assert saved.status_code == 200, saved.text
    return panel


async def test_drag_connect_rename_live_in_another_tab_and_by_the_ai(
    gateway: GatewayHarness, browser: Browser
) -> None:
    gw = gateway
    panel = await flowchart(gw)
    one = await open_workspace(gw, browser)
    two = await open_workspace(gw, browser)
    errors: list[str] = []
    for page in (one, two):
        page.on("pageerror", lambda exc: errors.append(str(exc)))
    await move_add_and_connect(gw, panel, one, two)
    await rename_label_and_delete(gw, panel, one, two)
    await the_ai_edits(gw, panel, one, two)
    await axe_and_screenshots(panel, one)
    assert errors == []
    await one.close()
    await two.close()


async def move_add_and_connect(gw: GatewayHarness, panel: str, one: Page, two: Page) -> None:
    # Drag "start" 220 px right: move_node stores it, the other tab moves it too.
    before_two = await center(node(two, "start"))
    x, y = await center(node(one, "start"))
    await drag(one, node(one, "start"), (x + 220, y + 40))
    await eventually(gw, panel, lambda s: "x" in s["nodes"][0])
    moved = (await state(gw, panel))["nodes"][0]
    assert moved["id"] == "start" and moved["x"] > 100, moved
    await moves(node(two, "start"), before_two)

    # Add a node from the toolbar (keyboard path), then connect End → it by the handles.
    await one.get_by_label("New node label").fill("Review draft")
    await one.get_by_label("New node label").press("Enter")
    for page in (one, two):
        await expect(node(page, "review-draft")).to_have_count(1, timeout=5_000)
    await one.get_by_role("button", name="Fit to view").click()  # both ends on screen
    await asyncio.sleep(0.5)  # the fit is animated
    source = node(one, "end").locator(".react-flow__handle.source")
    target = node(one, "review-draft").locator(".react-flow__handle.target")
    await drag(one, source, await center(target))
    wanted = {"from": "end", "to": "review-draft", "label": ""}
    await eventually(gw, panel, lambda s: wanted in s["edges"])
    await expect(two.locator(EDGE)).to_have_count(1, timeout=5_000)


async def rename_label_and_delete(gw: GatewayHarness, panel: str, one: Page, two: Page) -> None:
    # Rename by double-click: Escape cancels, Enter saves.
    await node(one, "end").dblclick()
    field = one.get_by_label("Label of node End")
    await field.fill("Never")
    await field.press("Escape")
    await expect(node(one, "end")).to_have_text("End")
    await node(one, "end").dblclick()
    await one.get_by_label("Label of node End").fill("Finish")
    # A live update while typing (another tab moves a node) leaves the edit alone.
    start = await center(node(one, "start"))
    moved = {"id": "start", "x": 400, "y": 0}
    await gw.http.post(f"/api/v1/panels/{panel}/tools/move_node", json=moved)
    await moves(node(one, "start"), start)
    await expect(one.get_by_label("Label of node End")).to_be_focused()
    await expect(one.get_by_label("Label of node End")).to_have_value("Finish")
    await one.get_by_label("Label of node End").press("Enter")
    await eventually(gw, panel, lambda s: s["nodes"][1]["label"] == "Finish")
    await expect(node(two, "end")).to_have_text("Finish", timeout=5_000)

    # Label the arrow by double-clicking it, then delete it with the Delete key.
    await one.locator(EDGE).locator(".react-flow__edge-interaction").dblclick(force=True)
    label = one.get_by_label(f"Label of arrow end{ARROW}review-draft")
    await label.fill("then")
    await label.press("Enter")
    await expect(two.locator(".gs-flow-edge__label")).to_have_text("then", timeout=5_000)
    edges = (await state(gw, panel))["edges"]
    assert {"from": "end", "to": "review-draft", "label": "then"} in edges
    await one.locator(".gs-flow-edge__label").click()
    await one.keyboard.press("Delete")
    await expect(two.locator(EDGE)).to_have_count(0, timeout=5_000)
    await eventually(gw, panel, lambda s: len(s["edges"]) == 1)


async def the_ai_edits(gw: GatewayHarness, panel: str, one: Page, two: Page) -> None:
    # The AI makes a change through the same tool: both tabs show it, viewports kept.
    viewport = two.locator(".react-flow__viewport")
    kept = await viewport.get_attribute("style")
    tools = (await gw.http.get(f"/api/v1/panels/{panel}")).json()["tools"]
    add_node = next(t for t in tools if t.endswith("__add_node"))
    args = {"id": "ai-step", "label": "Suggested by AI", "after": "review-draft"}
    gw.llm.push(Reply(tool_calls=((add_node, args),)), Reply(text="Added a step."))
    reply = await gw.chat("Add a step after the review")
    assert "Added a step" in reply["reply"], reply
    for page in (one, two):
        await expect(node(page, "ai-step")).to_have_text("Suggested by AI", timeout=5_000)
        await expect(
            page.locator(f".react-flow__edge[data-id='review-draft{ARROW}ai-step']")
        ).to_have_count(1)
    assert await viewport.get_attribute("style") == kept
    final = await state(gw, panel)
    assert [n["id"] for n in final["nodes"]] == ["start", "end", "review-draft", "ai-step"]


async def axe_and_screenshots(panel: str, one: Page) -> None:
    frame = f"[data-panel='{panel}']"
    found = await axe_violations(one, include=frame)
    assert found == [], describe(found)
    DOCS.mkdir(parents=True, exist_ok=True)
    await one.locator(frame).screenshot(path=str(DOCS / "flowchart-editor.png"))
    await one.evaluate("localStorage.setItem('nexflow.locale', 'ru')")
    await one.reload()
    await expect(node(one, "ai-step")).to_have_count(1, timeout=SLOW)
    await expect(one.get_by_role("button", name="Добавить узел")).to_be_visible()
    found = await axe_violations(one, include=frame)
    assert found == [], describe(found)
    await one.locator(frame).screenshot(path=str(DOCS / "flowchart-ru.png"))
    await one.evaluate("localStorage.setItem('nexflow.locale', 'en')")


async def test_keyboard_only_add_connect_and_delete(
    gateway: GatewayHarness, browser: Browser
) -> None:
    gw = gateway
    panel = await flowchart(gw)
    page = await open_workspace(gw, browser)
    await page.get_by_label("New node label").fill("Check")
    await page.get_by_role("button", name="Add node", exact=True).click()
    await expect(node(page, "check")).to_have_count(1, timeout=5_000)
    # Focus a node with the keyboard and select it (Enter), then connect it from the toolbar.
    await node(page, "check").focus()
    await page.keyboard.press("Enter")
    await expect(page.locator(".gs-diagram__selected")).to_have_text("Selected: Check")
    await eventually(gw, panel, lambda s: s["selected"] == "check")
    await page.get_by_label("Connect selected to").select_option("end")
    await page.get_by_role("button", name="Connect", exact=True).click()
    await eventually(gw, panel, lambda s: {"from": "check", "to": "end", "label": ""} in s["edges"])
    # Arrow keys move the focused node; the position is saved once the keys rest.
    await node(page, "check").focus()
    for _ in range(3):
        await page.keyboard.press("ArrowRight")
    await eventually(gw, panel, lambda s: "x" in s["nodes"][2])
    await page.get_by_role("button", name="Delete", exact=True).click()
    await eventually(gw, panel, lambda s: [n["id"] for n in s["nodes"]] == ["start", "end"])
    await expect(node(page, "check")).to_have_count(0)

    # The template's own Action lays the chart out left to right: handles move to the sides.
    await page.get_by_role("button", name="Left to right").click()
    await expect(node(page, "start").locator(".react-flow__handle-right")).to_have_count(1)
    await page.screenshot(path=str(gw.home / "flowchart-lr.png"))

    # A phone: the toolbar wraps, the canvas fits, nothing scrolls sideways.
    await page.set_viewport_size({"width": 390, "height": 844})
    await expect(page.get_by_role("button", name="Add node", exact=True)).to_be_in_viewport()
    canvas = await page.locator(".gs-diagram__canvas").bounding_box()
    assert canvas is not None and canvas["width"] <= 390
    wide = await page.evaluate("document.documentElement.scrollWidth")
    assert wide <= 390, wide
    await page.close()
