"""Writes the gateway's OpenAPI schema and the TypeScript types GraphStudio uses from it.

    .venv/bin/python scripts/gen_api_types.py           # regenerate src/api/schema.d.ts
    .venv/bin/python scripts/gen_api_types.py --check   # exit 1 when the committed file drifted

The schema comes from the application the gateway builds with every optional part on
(panels, workspaces, flows), in a throwaway home; ``openapi-typescript`` (from the app's
npm lockfile) turns it into ``connectors/web/app/src/api/schema.d.ts``. The test suite runs
``--check`` (tests/web/test_api_types.py), so a route whose shape changes without the
types following fails CI.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "connectors" / "web" / "app"
TYPES = APP / "src" / "api" / "schema.d.ts"


def openapi_schema() -> dict[str, Any]:
    """The schema of the application ``nexflow serve`` builds, without starting it."""
    from nexflow.app import build_application
    from nexflow.config import load_config
    from nexflow.observability.logging import LogHub

    with tempfile.TemporaryDirectory() as home:
        env = {"NEXFLOW_HOME": home, "NEXFLOW_LLM_MODEL": "openai/schema"}
        app = build_application(load_config(None, env), LogHub())
        schema: dict[str, Any] = app.web.openapi()
        return schema


def render_types(schema: dict[str, Any]) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "openapi.json", Path(tmp) / "schema.d.ts"
        source.write_text(json.dumps(schema, indent=1, sort_keys=True))
        subprocess.run(
            ["npx", "--no-install", "openapi-typescript", str(source), "-o", str(target)],
            cwd=APP,
            check=True,
            capture_output=True,
            text=True,
        )
        return target.read_text()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed types drift")
    args = parser.parse_args(argv)
    text = render_types(openapi_schema())
    if args.check:
        if not TYPES.is_file() or TYPES.read_text() != text:
            print(
                f"{TYPES.relative_to(ROOT)} does not match the gateway's routes: run "
                "`.venv/bin/python scripts/gen_api_types.py` and commit the result.",
                file=sys.stderr,
            )
            return 1
        print("API types match the routes.")
        return 0
    TYPES.write_text(text)
    print(f"wrote {TYPES.relative_to(ROOT)} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
