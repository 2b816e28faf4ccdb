"""GraphStudio's marketplace in real Chromium: a flagged skill's review shows its findings
and Install waits for the owner's approval; a clean skill installs and shows as installed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from axe import axe_violations, describe
from playwright.async_api import Browser, expect

from nexflow.testing.harness import GatewayHarness

pytestmark = pytest.mark.browser
DOCS = Path(__file__).resolve().parents[3] / "docs" / "graphstudio"
FIXTURES = Path(__file__).resolve().parents[2] / "skills_install" / "fixtures"


def index_of(tmp_path: Path, names: list[str]) -> Path:
    skills = []
    for name in names:
        folder = FIXTURES / name
        files = {
            p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }
        skills.append(
            {
                "slug": name,
                "source": str(folder),
                "version": "1.0",
                "sha256": files,
                "description": f"the {name} fixture",
            }
        )
    path = tmp_path / "index.json"
    path.write_text(json.dumps({"skills": skills}))
    return path


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[GatewayHarness]:
    index = index_of(tmp_path, ["clean", "pipe-to-shell"])
    config = tmp_path / "config.yml"
    config.write_text(f"skills:\n  index: {json.dumps(str(index))}\n")
    async with GatewayHarness(tmp_path / "home", config_file=config) as harness:
        yield harness


async def test_review_then_install_from_the_marketplace(
    gw: GatewayHarness, browser: Browser
) -> None:
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.add_init_script("localStorage.setItem('nexflow.locale', 'en')")
    await page.goto(gw.url + "/#/marketplace")
    skills = page.locator("#ops-market-skill")
    await expect(skills.locator("li")).to_have_count(2)

    await page.get_by_role("button", name="Review pipe-to-shell").click()
    hostile = skills.locator("li", has_text="pipe-to-shell")
    await expect(hostile.locator(".ops-finding").first).to_contain_text("high")
    install = page.get_by_role("button", name="Install pipe-to-shell")
    await expect(install).to_be_disabled()  # until the findings are approved
    await expect(hostile.get_by_label("I have read the findings; install anyway")).to_be_visible()

    await page.get_by_role("button", name="Install clean").click()
    clean = skills.locator("li", has_text="the clean fixture")
    await expect(clean.get_by_role("status")).to_have_text("Installed.")
    await expect(clean).to_contain_text("installed 1.0")
    assert (gw.home / "skills.lock").exists()
    assert not (gw.home / "skills" / "pipe-to-shell").exists()

    violations = await axe_violations(page, include=".ops-view")
    assert not violations, describe(violations)
    await page.screenshot(path=str(DOCS / "ops-marketplace.png"), full_page=True)
    await page.close()
