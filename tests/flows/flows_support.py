"""A scripted fake FlowHost for the flows tests (also used by the crash subprocess)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nexflow.flows import Flow, FlowError, NodeResult, RunInfo, load_flow_text


@dataclass
class Script:
    """What a tool returns: fail the first ``fail_times`` calls, sleep ``delay_s``."""

    output: Any = None
    fail_times: int = 0
    forever: bool = False
    delay_s: float = 0.0
    tokens: int = 0


@dataclass
class FakeHost:
    """Records every call; tools and agents answer from ``scripts`` by tool name/node."""

    scripts: dict[str, Script] = field(default_factory=dict)
    flows: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    calls: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, node, key)
    asked: list[tuple[str, str, str]] = field(default_factory=list)  # (run, node, title)
    asked_event: asyncio.Event = field(default_factory=asyncio.Event)
    counts: dict[str, int] = field(default_factory=dict)

    def _append(self, line: dict[str, Any]) -> None:
        if self.log_path is not None:
            with self.log_path.open("a") as f:
                f.write(json.dumps(line) + "\n")
                f.flush()

    async def _answer(self, name: str, node: str, key: str, extra: Any) -> NodeResult:
        script = self.scripts.get(name, Script(output={"node": node, "echo": extra}))
        self.calls.append((name, node, key))
        n = self.counts[name] = self.counts.get(name, 0) + 1
        if script.delay_s:
            await asyncio.sleep(script.delay_s)
        self._append({"key": key, "tool": name, "node": node})
        if script.forever or n <= script.fail_times:
            return NodeResult(ok=False, error=f"{name} failed (call {n})", tokens_in=script.tokens)
        return NodeResult(ok=True, output=script.output, tokens_in=script.tokens, tool_calls=1)

    async def call_tool(
        self, run: RunInfo, node: str, tool: str, args: Mapping[str, Any], idempotency_key: str
    ) -> NodeResult:
        return await self._answer(tool, node, idempotency_key, dict(args))

    async def run_agent(
        self,
        run: RunInfo,
        node: str,
        prompt: str,
        tools: Sequence[str] | None,
        route: str | None,
        idempotency_key: str,
    ) -> NodeResult:
        return await self._answer(f"agent:{node}", node, idempotency_key, prompt)

    async def ask(self, run: RunInfo, node: str, title: str, detail: str) -> None:
        self.asked.append((run.run_id, node, title))
        self._append({"key": f"ask:{run.run_id}:{node}", "node": node})
        self.asked_event.set()

    def load_flow(self, owner: str, name: str) -> Flow:
        if name not in self.flows:
            raise FlowError(f"no flow '{name}'")
        return load_flow_text(self.flows[name], f"{name}.yaml")
