"""GraphStudio browser tests: the app is built once per run (scripts/build_web.sh, a no-op
when the build is newer than its sources), then every test drives real Chromium."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BUILT = ROOT / "connectors" / "web" / "static" / "app" / "index.html"


@pytest.fixture(scope="session", autouse=True)
def built_app() -> Path:
    """The built app's index.html; builds it first when missing or stale."""
    done = subprocess.run(
        [str(ROOT / "scripts" / "build_web.sh")],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"GraphStudio did not build:\n{done.stdout}\n{done.stderr}"
    assert BUILT.is_file()
    return BUILT
