"""The flow editor in real Chromium against a real gateway (no model needed): a new flow of
4 nodes built by dragging types from the palette and connecting their ports, a setting
edited in the side form, saved (the commit of flows/<name>.yaml shown and in the file's
history), run and watched node by node until every node is completed; a flow with comments
edited on the canvas keeps its comments and order; axe finds nothing serious, English and
Russian."""

from __future__ import annotations

from pathlib import Path

import pytest
from axe import axe_violations, describe
from playwright.async_api import Browser, Locator, Page, expect

from nexflow.testing.harness import GatewayHarness

pytestmark = pytest.mark.browser
DOCS = Path(__file__).resolve().parents[3] / "docs" / "graphstudio"


def node(page: Page, node_id: str) -> Locator:
    return page.locator(f".react-flow__node[data-id='{node_id}']")


def port(page: Page, node_id: str, name: str) -> Locator:
    return node(page, node_id).locator(f".react-flow__handle[data-handleid='{name}']")


async def center(loc: Locator) -> tuple[float, float]:
    box = await loc.bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


async def connect(page: Page, source: str, out: str, target: str) -> None:
    x, y = await center(port(page, source, out))
    tx, ty = await center(port(page, target, "in"))
    await page.mouse.move(x, y)
    await page.mouse.down()
    await page.mouse.move(tx, ty, steps=12)
    await page.mouse.up()


async def drop(page: Page, node_type: str, at: tuple[int, int]) -> None:
    chip = page.locator(f".fl-chip[data-node-type='{node_type}']")
    canvas = page.locator(".fl-canvas .react-flow")
    await chip.drag_to(canvas, target_position={"x": at[0], "y": at[1]})


async def build_four_nodes(page: Page) -> None:
    """Drag four node types onto the canvas, connect them into a diamond, set them up."""
    # Four nodes dragged from the palette onto the canvas.
    await drop(page, "transform", (260, 60))
    await drop(page, "wait", (120, 210))
    await drop(page, "transform", (420, 210))
    await drop(page, "merge", (260, 360))
    for nid in ("transform_1", "wait_1", "transform_2", "merge_1"):
        await expect(node(page, nid)).to_be_visible()

    # Connected by their typed ports (out → in).
    await connect(page, "transform_1", "out", "wait_1")
    await connect(page, "transform_1", "out", "transform_2")
    await connect(page, "wait_1", "out", "merge_1")
    await connect(page, "transform_2", "out", "merge_1")
    await expect(page.locator(".react-flow__edge")).to_have_count(4)

    # Settings in the side form: the wait's seconds, the transforms' expressions.
    await node(page, "wait_1").click()
    await page.get_by_label("seconds").fill("1.5")
    await node(page, "transform_1").click()
    await page.get_by_label("expr").fill("'hello'")
    await node(page, "transform_2").click()
    await page.get_by_label("expr").fill("nodes.transform_1.output + ' world'")
    yaml_text = page.get_by_label("YAML, saved as flows/demo.yaml")
    text = await yaml_text.input_value()
    assert "needs: [transform_1]" in text and "needs: [wait_1, transform_2]" in text, text
    assert text.index("transform_1:") < text.index("wait_1:") < text.index("merge_1:")
    await expect(page.get_by_test_id("fl-validity")).to_have_text("valid", timeout=10_000)
    await page.screenshot(path=str(DOCS / "flows-editor.png"))


async def test_build_save_run_and_watch(gateway: GatewayHarness, browser: Browser) -> None:
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    await page.add_init_script("localStorage.setItem('nexflow.locale', 'en')")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{gateway.url}/#/flows")
    await page.get_by_role("link", name="Flows").first.wait_for()
    await page.get_by_label("New flow name").fill("demo")
    await page.get_by_role("button", name="Create").click()
    await expect(page.locator(".fl-chip[data-node-type='transform']")).to_be_visible(timeout=30_000)
    # An empty flow is invalid (no nodes): live validation says so with line and column.
    await expect(page.get_by_test_id("fl-validity")).to_contain_text("problem", timeout=10_000)

    await expect(page.get_by_test_id("fl-problems")).to_contain_text("line 4, column 1")

    await build_four_nodes(page)
    yaml_text = page.get_by_label("YAML, saved as flows/demo.yaml")

    # Save: the commit is shown, and it is the file's newest in the workspace's history.
    await page.get_by_role("button", name="Save", exact=True).click()
    commit = page.get_by_test_id("fl-commit")
    await expect(commit).to_contain_text("Last commit", timeout=15_000)
    saved = (await gateway.http.get("/api/v1/workspaces/default/files/flows/demo.yaml")).json()
    assert saved["content"] == await yaml_text.input_value()
    history = (
        await gateway.http.get("/api/v1/workspaces/default/files/flows/demo.yaml/history")
    ).json()
    assert history and history[0]["sha"][:8] in await commit.inner_text()
    listed = (await gateway.http.get("/api/v1/flows")).json()
    assert [(f["name"], f["valid"]) for f in listed] == [("demo", True)]

    # Run: nodes light up one by one (the first completes while the wait still runs).
    await page.get_by_role("button", name="Run", exact=True).click()
    await expect(node(page, "transform_1").locator(".fl-node")).to_have_attribute(
        "data-status", "completed", timeout=30_000
    )
    assert await node(page, "merge_1").locator(".fl-node").get_attribute("data-status") != (
        "completed"
    )
    await expect(page.get_by_test_id("fl-run")).to_have_attribute(
        "data-status", "completed", timeout=30_000
    )
    await expect(page.locator(".fl-node[data-status='completed']")).to_have_count(4)
    await node(page, "merge_1").click()
    stage = page.get_by_test_id("fl-stage")
    await expect(stage).to_contain_text("hello world")
    await expect(stage).to_contain_text("Attempts")
    await page.screenshot(path=str(DOCS / "flows-run.png"))
    violations = await axe_violations(page)
    assert violations == [], describe(violations)

    # Russian.
    await page.locator("button[lang=ru]").click()
    await expect(page.get_by_role("heading", name="Потоки")).to_be_visible()
    await expect(page.get_by_text("Типы узлов")).to_be_visible()
    await page.screenshot(path=str(DOCS / "flows-ru.png"))
    violations = await axe_violations(page)
    assert violations == [], describe(violations)
    assert errors == []
    await page.close()


COMMENTED = """\
# Greets someone. This comment must survive the canvas.
name: kept
description: Comments and order are kept   # trailing comment
nodes:
  # the first step
  first: {type: transform, expr: "'a'"}   # inline
  second:
    type: transform
    # why it needs first
    needs: [first]
    expr: "nodes.first.output + 'b'"
# end of file
"""


async def phone_layout(page: Page) -> None:
    """At 390 px the list, palette, canvas and form stack; the side form still works."""
    await page.set_viewport_size({"width": 390, "height": 844})
    await expect(page.locator(".fl-canvas .react-flow")).to_be_visible()
    await page.get_by_role("button", name="Edit first").click()
    await expect(page.get_by_label("expr")).to_have_value("'a'")
    await page.screenshot(path=str(DOCS / "flows-phone.png"))
    violations = await axe_violations(page)
    assert violations == [], describe(violations)


async def test_canvas_edits_keep_comments_and_order(
    gateway: GatewayHarness, browser: Browser
) -> None:
    saved = await gateway.http.post("/api/v1/flows", json={"name": "kept", "yaml": COMMENTED})
    assert saved.status_code == 200, saved.text
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    await page.add_init_script("localStorage.setItem('nexflow.locale', 'en')")
    await page.goto(f"{gateway.url}/#/flows/kept")
    yaml_text = page.get_by_label("YAML, saved as flows/kept.yaml")
    await expect(yaml_text).to_have_value(COMMENTED, timeout=30_000)
    await expect(page.locator(".react-flow__edge")).to_have_count(1)

    # Keyboard only: add a node with its button, connect it from the side form, edit it.
    await page.get_by_role("button", name="Add a transform node").click()
    await page.get_by_label("Connect port").wait_for()
    await page.get_by_label("expr").fill("nodes.second.output + 'c'")
    await page.get_by_role("button", name="Close the node").click()
    await page.get_by_role("button", name="Edit second").click()
    await page.get_by_label("Connect port").select_option("out")
    await page.get_by_label("to node").select_option("transform_1")
    await page.get_by_role("button", name="Connect", exact=True).click()
    await expect(page.locator(".react-flow__edge")).to_have_count(2)
    await page.get_by_label("expr").fill("nodes.first.output + 'B'")

    text = await yaml_text.input_value()
    for comment in (
        "# Greets someone. This comment must survive the canvas.",
        "# trailing comment",
        "# the first step",
        "# inline",
        "# why it needs first",
        "# end of file",
    ):
        assert comment in text, (comment, text)
    assert text.index("name: kept") < text.index("first:") < text.index("second:")
    assert text.index("second:") < text.index("transform_1:")
    assert "needs: [second]" in text and "expr: \"nodes.first.output + 'B'\"" in text
    await expect(page.get_by_test_id("fl-validity")).to_have_text("valid", timeout=10_000)

    # A mistake typed in the text: the problem at its line, the node marked.
    await yaml_text.fill(text.replace("needs: [second]", "needs: [nowhere]"))
    problems = page.get_by_test_id("fl-problems")
    await expect(problems).to_contain_text("unknown node id 'nowhere'", timeout=10_000)
    await expect(problems).to_contain_text("line ")
    await expect(node(page, "transform_1").locator(".fl-node")).to_have_class("fl-node is-invalid")
    await yaml_text.fill(text)
    await expect(page.get_by_test_id("fl-validity")).to_have_text("valid", timeout=10_000)

    await page.get_by_role("button", name="Save", exact=True).click()
    await expect(page.get_by_test_id("fl-commit")).to_be_visible(timeout=15_000)
    stored = (await gateway.http.get("/api/v1/workspaces/default/files/flows/kept.yaml")).json()
    assert stored["content"] == text
    assert "# end of file" in stored["content"]
    violations = await axe_violations(page)
    assert violations == [], describe(violations)

    # Delete on a selected node removes it and every reference to it.
    await node(page, "transform_1").click()
    await page.keyboard.press("Delete")
    await expect(page.locator(".react-flow__node")).to_have_count(2)
    after = await yaml_text.input_value()
    assert "transform_1" not in after and "# why it needs first" in after

    await phone_layout(page)
    await page.close()
