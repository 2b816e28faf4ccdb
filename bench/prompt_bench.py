"""What a bare "hi" costs in prompt tokens, with every bundled skill eligible and one MCP
server configured (docs/benchmarks.md, "Prompt").

The gateway is built as ``serve`` builds it, in process, against the scripted model; the
request the model receives for "hi" in a new session is counted two ways with litellm's
tokenizer (the one ``gateway_bench.py`` uses): the messages and tool schemas as the
provider counts them, and the whole JSON request body as sent. Every bundled skill is
made eligible (its variables granted with placeholder values; stub ``systemctl``,
``journalctl``, ``aws`` on PATH for the skills that need a binary), so the index lists all
of them. The same request is then counted with the old behaviour for comparison in the
same run: every tool's schema sent (no deferral) and the skill index with descriptions.

    .venv/bin/python bench/prompt_bench.py [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from nexflow.app import build_application
from nexflow.bus.events import InboundEvent
from nexflow.config import load_config
from nexflow.memory.paging import PAGE_TOOLS
from nexflow.observability.logging import LogHub
from nexflow.skills import load_skill
from nexflow.skills.index import render_index
from nexflow.skills.model import BUNDLED_SKILLS
from nexflow.testing.fake_llm import FakeLLMServer
from nexflow.tools.base import ToolContext

REPO = Path(__file__).resolve().parents[1]
DEMO_MCP = REPO / "tests" / "mcp_client" / "mcp_demo_server.py"
TARGET = 1000


def bundled_variables() -> dict[str, str]:
    names: set[str] = set()
    for path in sorted(BUNDLED_SKILLS.glob("*/SKILL.md")):
        skill = load_skill(path)
        names.update(skill.env_required)
    return {name: "bench-placeholder" for name in sorted(names)}


def stub_binaries(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("systemctl", "journalctl", "aws", "gcloud", "az"):
        stub = folder / name
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)


def config_text(variables: dict[str, str], notes: Path) -> str:
    grants = {path.parent.name: [] for path in BUNDLED_SKILLS.glob("*/SKILL.md")}
    lines = ["skills:", "  secrets:"]
    for name in sorted(grants):
        needed = sorted(load_skill(BUNDLED_SKILLS / name / "SKILL.md").env_required)
        lines.append(f"    {name}: {json.dumps(needed)}")
    lines += [
        "mcp:",
        "  servers:",
        "    notes:",
        f"      command: {json.dumps(sys.executable)}",
        f"      args: [{json.dumps(str(DEMO_MCP))}, {json.dumps(str(notes))}]",
        "      description: Team notes",
    ]
    return "\n".join(lines) + "\n"


async def capture(work: Path) -> tuple[dict[str, Any], int, list[dict[str, Any]]]:
    """The request the model got for "hi", how many skills are eligible, and every tool
    schema the caller has (what was sent before deferral)."""
    variables = bundled_variables()
    bin_dir = work / "bin"
    stub_binaries(bin_dir)
    notes = work / "notes"
    notes.mkdir()
    config = work / "config.yml"
    config.write_text(config_text(variables, notes))
    server = FakeLLMServer()
    base = await server.start()
    saved = dict(os.environ)
    os.environ.update(variables)
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {
        "NEXFLOW_HOME": str(work / "home"),
        "NEXFLOW_LLM_MODEL": "openai/fake",
        "NEXFLOW_LLM_API_BASE": base,
        "NEXFLOW_LLM_API_KEY": "x",
        "NEXFLOW_LLM__OLLAMA__PROBE": "false",
        "NEXFLOW_MEMORY__EMBEDDER": "none",
    }
    try:
        app = build_application(load_config(config, env), LogHub())
        await app.start()
        try:
            eligible = sum(1 for s in app.skills.registry.list() if s.available)
            toolset = app.tools.tools_for(ToolContext("owner", "s", "web", "bench", role="owner"))
            every = [s.to_openai() for s in toolset.specs(hidden=PAGE_TOOLS)]
            event = InboundEvent(channel="web", chat_id="bench", sender_id="owner", message="hi")
            accepted = await app.gateway.publish(event)
            summary = await app.gateway.wait_reply(accepted.inbox_id, 30)
            if summary is None or summary.error:
                raise SystemExit(f"the turn failed: {summary}")
        finally:
            await app.stop()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        await server.stop()
    return server.requests[-1], eligible, every


def counts(body: dict[str, Any]) -> dict[str, Any]:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch
    import litellm  # seconds to import: only when counting

    messages, tools = body.get("messages", []), body.get("tools") or None
    system = next((m["content"] for m in messages if m.get("role") == "system"), "")
    return {
        "tokens": int(litellm.token_counter(model="gpt-4o-mini", messages=messages, tools=tools)),
        "body_tokens": int(
            litellm.token_counter(model="gpt-4o-mini", text=json.dumps(body, ensure_ascii=False))
        ),
        "system_chars": len(system),
        "tools": [t["function"]["name"] for t in tools or []],
    }


def old_style(body: dict[str, Any], app_tools: list[dict[str, Any]], index: str) -> dict[str, Any]:
    """The same request as before deferral: every schema, the index with descriptions."""
    messages = [dict(m) for m in body["messages"]]
    system = messages[0]["content"]
    start = system.find("Skills (call read_skill")
    if start != -1:
        end = system.find("\n\n", start)
        system = system[:start] + index + (system[end:] if end != -1 else "")
    messages[0]["content"] = system
    return {**body, "messages": messages, "tools": app_tools}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--dump", type=Path, help="write the request body to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nexflow-prompt-") as tmp:
        work = Path(tmp)
        body, eligible, every = await capture(work)
        if args.dump:
            args.dump.write_text(json.dumps(body, indent=1, ensure_ascii=False))
        now = counts(body)
        skills = [load_skill(p) for p in sorted(BUNDLED_SKILLS.glob("*/SKILL.md"))]
        index = render_index(skills, char_budget=2000)
        before = counts(old_style(body, every, index))
    result = {"eligible_skills": eligible, "now": now, "before": before, "target": TARGET}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f'prompt for a bare "hi" ({eligible} skills eligible, one MCP server configured)')
    print(f"{'':34}{'now':>8}{'before':>8}")
    for key, label in (
        ("tokens", "messages + tools (tokens)"),
        ("body_tokens", "whole body (tokens)"),
    ):
        print(f"  {label:32}{now[key]:>8}{before[key]:>8}")
    print(f"  {'system prompt (chars)':32}{now['system_chars']:>8}{before['system_chars']:>8}")
    print(f"  {'tool schemas sent':32}{len(now['tools']):>8}{len(before['tools']):>8}")
    verdict = "met" if now["body_tokens"] <= TARGET else "NOT met"
    print(f"  target: whole body <= {TARGET} tokens: {verdict}")
    print(f"  tools now: {', '.join(now['tools'])}")


if __name__ == "__main__":
    asyncio.run(main())
