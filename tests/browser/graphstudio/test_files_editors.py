"""GraphStudio's files in real Chromium: a note edited beside its live preview and
saved (its commit in the history), a Python file highlighted by CodeMirror and saved with
Ctrl+S, a restore from the history, a save refused as stale, the tree by keyboard, the
view in Russian, and axe on each."""

from __future__ import annotations

from pathlib import Path

import pytest
from axe import axe_violations, describe
from playwright.async_api import Browser, Page, expect

from nexflow.testing.harness import GatewayHarness

pytestmark = pytest.mark.browser
DOCS = Path(__file__).resolve().parents[3] / "docs" / "graphstudio"
FILES = "/api/v1/workspaces/default/files"


async def put(gw: GatewayHarness, path: str, content: str) -> str:
    resp = await gw.http.put(f"{FILES}/{path}", json={"content": content})
    assert resp.status_code == 200, resp.text
    sha: str = resp.json()["sha"]
    return sha


async def history(gw: GatewayHarness, path: str) -> list[dict[str, object]]:
    resp = await gw.http.get(f"{FILES}/{path}/history")
    return list(resp.json())


async def open_page(browser: Browser, gw: GatewayHarness, hash_: str, lang: str = "en") -> Page:
    page = await browser.new_page(viewport={"width": 1280, "height": 860})
    await page.add_init_script(f"localStorage.setItem('nexflow.locale', '{lang}')")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(gw.url + "/" + hash_)
    try:
        await expect(page.locator(".fi-view")).to_be_visible()
    except AssertionError as exc:
        raise AssertionError(f"the file browser did not show; page errors: {errors}") from exc
    return page


async def no_axe_violations(page: Page) -> None:
    found = await axe_violations(page, include=".fi-view")
    assert found == [], describe(found)


async def type_at_end(page: Page, editor: str, text: str) -> None:
    await page.locator(f"{editor} .cm-content").click()
    await page.keyboard.press("Control+End")
    await page.keyboard.type(text)


async def test_note_edit_preview_and_save(gateway: GatewayHarness, browser: Browser) -> None:
    await put(gateway, "notes/plan.md", "# Plan\n\nShopping first.\n")
    page = await open_page(browser, gateway, "#/files/default/notes/plan.md")
    preview = page.locator(".fi-preview")
    await expect(preview.locator("h1")).to_have_text("Plan")
    await expect(page.locator(".fi-notes .cm-content")).to_have_attribute(
        "aria-label", "Markdown of notes/plan.md"
    )
    await type_at_end(page, ".fi-notes", "\n<img src=x onerror=alert(1)>\n\n## Groceries\n\n- milk")
    await expect(preview.locator("h2")).to_have_text("Groceries")
    await expect(preview.locator("li")).to_have_text("milk")
    assert await preview.locator("img[onerror]").count() == 0  # sanitised
    await expect(page.locator(".fi-dirty")).to_be_visible()
    await page.get_by_role("button", name="Save", exact=True).click()
    await expect(page.locator(".fi-commit")).to_contain_text("Saved as commit")
    await expect(page.locator(".fi-dirty")).to_have_count(0)
    await expect(page.locator(".fi-commit-item")).to_have_count(2)
    commits = await history(gateway, "notes/plan.md")
    assert len(commits) == 2
    text = (await gateway.http.get(f"{FILES}/notes/plan.md")).json()["content"]
    assert "## Groceries" in text and "- milk" in text
    await no_axe_violations(page)
    await page.screenshot(path=str(DOCS / "files-notes.png"))
    await page.close()


async def test_code_file_highlighted_and_saved_with_ctrl_s(
    gateway: GatewayHarness, browser: Browser
) -> None:
    await put(gateway, "src/app.py", 'def greet(name):\n    return f"hi {name}"  # hello\n')
    page = await open_page(browser, gateway, "#/files/default")
    tree = page.get_by_role("tree")
    await tree.get_by_role("treeitem", name="app.py").click()
    await expect(page).to_have_url(f"{gateway.url}/#/files/default/src/app.py")
    code = page.locator(".fi-code")
    await expect(code.locator(".cm-lineNumbers").first).to_be_visible()
    await expect(code.locator(".fi-cm")).to_have_attribute("data-language", "python")
    # The Python grammar loaded: tokens are wrapped in CodeMirror's highlight classes.
    keyword = code.locator(".cm-line").first.locator("span", has_text="def")
    await expect(keyword).to_have_count(1)
    assert (await keyword.get_attribute("class") or "").startswith("ͼ")
    await type_at_end(page, ".fi-code", "\n\nprint(greet('milk'))")
    await page.keyboard.press("Control+s")
    await expect(page.locator(".fi-commit")).to_contain_text("Saved as commit")
    await expect(page.locator(".fi-commit-item")).to_have_count(2)
    text = (await gateway.http.get(f"{FILES}/src/app.py")).json()["content"]
    assert text.endswith("print(greet('milk'))")
    await no_axe_violations(page)
    await page.screenshot(path=str(DOCS / "files-code.png"))
    await page.close()


async def test_restore_from_history(gateway: GatewayHarness, browser: Browser) -> None:
    first = await put(gateway, "notes/list.md", "# List\n\n- first\n")
    await put(gateway, "notes/list.md", "# List\n\n- second\n")
    page = await open_page(browser, gateway, "#/files/default/notes/list.md")
    await expect(page.locator(".fi-preview li")).to_have_text("second")
    await page.get_by_role("button", name=f"Restore version {first[:7]}").click()
    await expect(page.locator(".fi-preview li")).to_have_text("first")
    await expect(page.locator(".fi-commit-item")).to_have_count(3)
    await expect(page.locator(".fi-commit-item").first).to_contain_text("Restore notes/list.md")
    commits = await history(gateway, "notes/list.md")
    assert len(commits) == 3
    await page.close()


async def test_stale_save_is_explained_and_reloads(
    gateway: GatewayHarness, browser: Browser
) -> None:
    await put(gateway, "src/cfg.json", '{"a": 1}\n')
    page = await open_page(browser, gateway, "#/files/default/src/cfg.json")
    await expect(page.locator(".fi-code .cm-content")).to_contain_text('"a"')
    await type_at_end(page, ".fi-code", " ")  # unsaved edits: a commit elsewhere keeps them
    await put(gateway, "src/cfg.json", '{"a": 2}\n')  # someone else commits meanwhile
    await expect(page.locator(".fi-commit-item")).to_have_count(2)
    await page.keyboard.press("Control+s")
    alert = page.locator(".fi-alert")
    await expect(alert).to_contain_text("changed since you opened it")
    await alert.get_by_role("button", name="Reload").click()
    await expect(alert).to_have_count(0)
    await expect(page.locator(".fi-code .cm-content")).to_contain_text('"a": 2')
    await page.close()


async def test_tree_by_keyboard_new_note_and_russian(
    gateway: GatewayHarness, browser: Browser
) -> None:
    await put(gateway, "docs/a.md", "# A\n")
    await put(gateway, "docs/b.txt", "b\n")
    page = await open_page(browser, gateway, "#/files/default", lang="ru")
    await expect(page.get_by_role("button", name="Новая заметка")).to_be_visible()
    await expect(page.get_by_text("Выберите файл в дереве")).to_be_visible()
    tree = page.get_by_role("tree", name="Файлы рабочей области")
    first = tree.get_by_role("treeitem").first
    await first.focus()
    await expect(first).to_have_text("▾docs")
    await page.keyboard.press("ArrowLeft")  # close docs
    await expect(first).to_have_attribute("aria-expanded", "false")
    await page.keyboard.press("ArrowRight")  # open it again
    await page.keyboard.press("ArrowRight")  # into it: docs/a.md
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(f"{gateway.url}/#/files/default/docs/a.md")
    await expect(page.get_by_role("heading", name="История")).to_be_visible()
    await expect(page.get_by_role("button", name="Сохранить")).to_be_visible()

    await page.get_by_role("button", name="Новая заметка").click()
    await page.get_by_label("Название заметки").fill("идеи")
    await page.get_by_role("button", name="Создать").click()
    await expect(page).to_have_url(
        f"{gateway.url}/#/files/default/notes/%D0%B8%D0%B4%D0%B5%D0%B8.md"
    )
    await expect(page.locator(".fi-preview h1")).to_have_text("идеи")
    await expect(page.get_by_text("1 версия")).to_be_visible()
    await no_axe_violations(page)
    await page.screenshot(path=str(DOCS / "files-ru.png"))
    await page.close()


async def test_another_tab_sees_the_commit_and_phone_layout(
    gateway: GatewayHarness, browser: Browser
) -> None:
    await put(gateway, "notes/shared.md", "# Shared\n")
    one = await open_page(browser, gateway, "#/files/default/notes/shared.md")
    two = await open_page(browser, gateway, "#/files/default/notes/shared.md")
    await expect(two.locator(".fi-commit-item")).to_have_count(1)
    await expect(two.locator(".fi-commit-item").first).to_contain_text("you")
    await type_at_end(one, ".fi-notes", "\nmore")
    await one.keyboard.press("Control+s")
    await expect(one.locator(".fi-commit")).to_contain_text("Saved as commit")
    # file.committed over /ws/events: the other tab's history follows without a reload
    await expect(two.locator(".fi-commit-item")).to_have_count(2)
    await expect(two.locator(".fi-preview")).to_contain_text("more")  # no unsaved edits there
    await type_at_end(two, ".fi-notes", "\nmine")  # an edit in the second tab stays...
    await put(gateway, "notes/shared.md", "# Shared\nfrom elsewhere\n")
    await expect(two.locator(".fi-commit-item")).to_have_count(3)
    await expect(two.locator(".fi-preview")).to_contain_text("mine")  # ...and is not replaced
    await two.close()

    await one.set_viewport_size({"width": 390, "height": 844})
    await expect(one.get_by_role("button", name="Save", exact=True)).to_be_in_viewport()
    box = await one.locator(".fi-preview").bounding_box()
    assert box is not None and box["width"] <= 390
    await no_axe_violations(one)
    await one.screenshot(path=str(DOCS / "files-phone.png"), full_page=True)
    await one.close()


async def test_delete_then_restore_from_history(gateway: GatewayHarness, browser: Browser) -> None:
    first = await put(gateway, "src/tool.ts", "export const a: number = 1;\n")
    page = await open_page(browser, gateway, "#/files/default/src/tool.ts")
    await expect(page.locator(".fi-code .fi-cm")).to_have_attribute("data-language", "typescript")
    page.on("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Delete", exact=True).click()
    await expect(page.locator(".fi-commit")).to_contain_text("Deleted in commit")
    tree = page.get_by_role("tree")
    await expect(tree.get_by_role("treeitem", name="tool.ts")).to_have_count(0)
    await page.get_by_role("button", name=f"Restore version {first[:7]}").click()
    await expect(page.locator(".fi-code .cm-content")).to_contain_text("export const a")
    await expect(tree.get_by_role("treeitem", name="tool.ts")).to_have_count(1)
    assert len(await history(gateway, "src/tool.ts")) == 3
    await page.close()
