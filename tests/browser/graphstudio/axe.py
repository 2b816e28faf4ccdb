"""Accessibility checks with axe-core (from the app's npm lockfile) inside the page."""

from pathlib import Path
from typing import Any

from playwright.async_api import Page

AXE = (
    Path(__file__).resolve().parents[3]
    / "connectors"
    / "web"
    / "app"
    / "node_modules"
    / "axe-core"
    / "axe.min.js"
)
SERIOUS = ("serious", "critical")


async def axe_violations(page: Page, *, include: str | None = None) -> list[dict[str, Any]]:
    """The serious and critical WCAG 2 A/AA violations on ``page`` (or inside ``include``,
    a CSS selector), each with its rule id, help text and the offending nodes' targets."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.add_script_tag(content=AXE.read_text())
    result = await page.evaluate(
        """async (include) => {
            const context = include ? { include: [include] } : document;
            const r = await window.axe.run(context, {
                runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
            });
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                targets: v.nodes.slice(0, 5).map(n => n.target.join(' ')),
            }));
        }""",
        include,
    )
    return [v for v in result if v.get("impact") in SERIOUS]


def describe(violations: list[dict[str, Any]]) -> str:
    """One line per violation, for an assertion message."""
    return "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {v['targets']}" for v in violations
    )
