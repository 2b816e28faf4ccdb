"""The pages a browser opens: GraphStudio at /, the classic chat at /chat, and the API
reference at /docs working with no network (Swagger UI served from the package)."""

import pytest
from axe import axe_violations, describe
from playwright.async_api import Browser, expect

from nexflow.testing.harness import GatewayHarness

pytestmark = pytest.mark.browser


async def test_root_is_graphstudio_and_chat_is_the_classic_page(
    gateway: GatewayHarness, browser: Browser
) -> None:
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(gateway.url + "/")
    await expect(page.locator("#root")).not_to_be_empty()
    await expect(page).to_have_title("Workspace · GraphStudio")
    await page.goto(gateway.url + "/chat")
    await expect(page.locator("#input")).to_be_visible()
    assert errors == []
    await page.close()


async def test_api_docs_render_offline(gateway: GatewayHarness, browser: Browser) -> None:
    page = await browser.new_page()
    outside: list[str] = []
    page.on(
        "request",
        lambda r: outside.append(r.url) if not r.url.startswith(gateway.url) else None,
    )
    await page.goto(gateway.url + "/docs")
    # Swagger UI built the operation list from /openapi.json: its own script ran here.
    await expect(page.locator(".opblock").first).to_be_visible(timeout=15_000)
    await expect(page.locator(".swagger-ui .title").first).to_contain_text("Nexflow")
    assert outside == [], f"requests left the gateway: {outside}"
    await page.close()


ROUTES = (
    ("#/w/default", "article[data-template='todo']"),
    ("#/assistant", ".as-view"),
    ("#/files/default", ".fi-view"),
    ("#/patches", ".pt-view"),
    ("#/dashboard", ".ops-view"),
    ("#/users", ".ops-view"),
    ("#/marketplace", ".ops-view"),
    ("#/settings", ".ops-view"),
)


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_every_page_has_no_serious_accessibility_violation(
    gateway: GatewayHarness, browser: Browser, lang: str
) -> None:
    """axe-core (WCAG 2.1 A/AA) on the whole page of every view, in both languages."""
    assert (await gateway.http.post("/api/v1/panels", json={"template": "todo"})).is_success
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.add_init_script(f"localStorage.setItem('nexflow.locale', '{lang}')")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    found: dict[str, str] = {}
    for route, ready in ROUTES:
        await page.goto(f"{gateway.url}/{route}")
        await expect(page.locator(ready).first).to_be_visible(timeout=30_000)
        await page.wait_for_load_state("networkidle")
        assert await page.locator("html").get_attribute("lang") == lang
        violations = await axe_violations(page)
        if violations:
            found[route] = describe(violations)
    assert found == {}, "\n".join(f"{r}:\n{v}" for r, v in found.items())
    assert errors == []
    await page.close()
