from __future__ import annotations

import sys

import pytest
from nxml_helpers import PANELS_DIR, ROOT

try:
    import nexflow  # noqa: F401
except ImportError:  # not installed in editable mode yet: test the checkout
    sys.path.insert(0, str(ROOT))


@pytest.fixture
def server_monitor_xml() -> str:
    return (PANELS_DIR / "server-monitor.nxml").read_text(encoding="utf-8")
