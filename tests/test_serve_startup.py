"""What ``nexflow serve`` loads before ``/health`` answers, checked in a fresh interpreter:
none of the heavy libraries the default path does not use until a feature needs them
(the MCP SDK, GitPython, wasmtime, DBOS with SQLAlchemy, litellm) and no APScheduler (the
reminder service loads it in a worker thread once started); the cyclic GC is on again,
with start-up's objects frozen; and the started gateway answers a chat message."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from nexflow.testing.fake_llm import FakeLLMServer
from nexflow.testing.fresh import run_fresh

REPO = Path(__file__).resolve().parents[1]

# The serve command's own steps (cli.cmd_serve without server.run), then the lifespan.
SERVE = """
import asyncio, argparse, gc, json, sys

from nexflow import cli

OFF_PATH = {"mcp", "mcp_types", "git", "gitdb", "wasmtime", "dbos", "sqlalchemy", "litellm"}
OFF_PATH.add("apscheduler")


def loaded():
    return sorted({m.split(".")[0] for m in sys.modules} & OFF_PATH)


report = {"before": loaded()}
with cli.frozen_startup():
    server = cli._serve_setup(argparse.Namespace(config=None, host=None, port=None))
report["built"] = loaded()
report["gc"] = [gc.isenabled(), gc.get_freeze_count() > 50_000]
app = server.config.app


async def main():
    server.config.load()
    async with app.router.lifespan_context(app):
        report["started"] = loaded()  # the lifespan ran
        import httpx  # the test's client

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            health = await client.get("/health")
            chat = await client.post("/api/v1/chat", json={"message": "hi"}, timeout=30)
        report["http"] = [health.status_code, chat.status_code, chat.json().get("reply")]
        for _ in range(500):  # the reminder service loads APScheduler in the background
            if "apscheduler.schedulers.asyncio" in sys.modules:
                break
            await asyncio.sleep(0.01)
        report["later"] = loaded()


asyncio.run(main())
print(json.dumps(report))
"""


async def test_serve_loads_no_heavy_library_before_use_and_answers_chat(
    tmp_path: Path, fake_llm: FakeLLMServer
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXFLOW_")}
    env.update(
        {
            "NEXFLOW_HOME": str(tmp_path / "home"),
            "NEXFLOW_LLM_MODEL": "openai/fake",
            "NEXFLOW_LLM_API_BASE": fake_llm.base_url,
            "NEXFLOW_LLM_API_KEY": "x",
            "NEXFLOW_LLM__OLLAMA__PROBE": "false",
            "NEXFLOW_LOGGING__LEVEL": "warning",
        }
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SERVE,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(90):
        stdout, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr.decode()
    report = json.loads(stdout.decode().strip().splitlines()[-1])
    assert report["before"] == []
    assert report["built"] == []  # what runs before /health can answer
    assert report["gc"] == [True, True]
    assert report["http"] == [200, 200, "Echo: hi"]
    # After start-up, in the background: the reminder service's scheduler, and GitPython
    # once the workspace layer opens; either may have loaded by the time the lifespan
    # returns (the workspace layer did in about one start of three here).
    background = {"apscheduler", "git", "gitdb"}
    assert set(report["started"]) <= background
    assert set(report["later"]) - {"git", "gitdb"} == {"apscheduler"}


def test_importing_and_building_the_app_loads_no_scheduler(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "import nexflow.app\n"
        "from nexflow.config.loader import load_config\n"
        "from nexflow.observability.logging import LogHub\n"
        "nexflow.app.build_application(load_config(None), LogHub())\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'apscheduler'))\n"
    )
    assert run_fresh(code, tmp_path).strip() == "[]"
