"""GraphStudio's TypeScript types are generated from the gateway's OpenAPI schema; a route
whose shape changes without them following fails here (scripts/gen_api_types.py)."""

import subprocess
import sys
from pathlib import Path

import pytest

from nexflow.web.openapi_doc import hoist_defs

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_committed_types_match_the_routes() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_api_types.py"), "--check"],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr + done.stdout


def test_nested_definitions_move_to_components() -> None:
    body = {"$defs": {"Item": {"type": "object"}}, "properties": {"x": {"$ref": "#/$defs/Item"}}}
    schema = {"paths": {"/a": {"post": {"requestBody": {"content": {"j": {"schema": body}}}}}}}
    out = hoist_defs(schema)
    assert out["components"]["schemas"]["Item"] == {"type": "object"}
    assert body == {"properties": {"x": {"$ref": "#/components/schemas/Item"}}}
    assert hoist_defs(out) == out  # idempotent
