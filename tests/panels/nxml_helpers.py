"""Shared helpers for the panel tests (a unique module name: tests/ has no packages)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PANELS_DIR = ROOT / "panels"


def panel_xml(view: str = "", data: str = "", logic: str = "", extra: str = "") -> str:
    """A small panel; Data content is on line 3, Logic content on 6, View content on 9."""
    return (
        '<NexusPanel id="t" title="T">\n'
        f"<Data>\n{data}\n</Data>\n"
        f"<Logic>\n{logic}\n</Logic>\n"
        f"<View>\n{view}\n</View>\n{extra}"
        "</NexusPanel>\n"
    )
