import sys
from pathlib import Path

import pytest

from nexflow.config.model import McpServerConfig

HERE = Path(__file__).resolve().parent
DEMO = HERE / "mcp_demo_server.py"


def demo_config(notes: Path, **extra: object) -> McpServerConfig:
    """The demo server (tests/mcp_client/mcp_demo_server.py) over stdio."""
    return McpServerConfig.model_validate(
        {"command": sys.executable, "args": [str(DEMO), str(notes)], **extra}
    )


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    path = tmp_path / "notes"
    path.mkdir()
    (path / "plan.txt").write_text("Ship the MCP client on Friday.")
    return path
