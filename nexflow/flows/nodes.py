"""One attempt of one node: interpolate, call the host or evaluate, shape the outcome.

Pure async code with no DBOS import: the durable layer wraps each call in a step.
An outcome is a JSON dict: ``ok``, ``output``, ``error``, ``tokens_in``, ``tokens_out``,
``tool_calls``, for conditions ``branch``, and ``untrusted`` (the sources of untrusted
output a tool or agent call saw) when there was any.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

from nexflow.flows import expr
from nexflow.flows.errors import ExprError
from nexflow.flows.host import FlowHost, NodeResult, RunInfo
from nexflow.flows.model import (
    AgentNode,
    ConditionNode,
    MergeNode,
    Node,
    ToolNode,
    TransformNode,
)

log = logging.getLogger(__name__)
MAX_OUTPUT = 1_000_000


def outcome(
    ok: bool,
    output: Any = None,
    error: str | None = None,
    *,
    tokens_in: int = 0,
    tokens_out: int = 0,
    tool_calls: int = 0,
    branch: bool | None = None,
) -> dict[str, Any]:
    return {
        "ok": ok,
        "output": output,
        "error": error,
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "tool_calls": tool_calls,
        "branch": branch,
    }


def idempotency_key(run_id: str, node_id: str, attempt: int) -> str:
    return f"{run_id}:{node_id}:{attempt}"


async def run_attempt(
    host: FlowHost,
    run: RunInfo,
    node_id: str,
    node: Node,
    scope: Mapping[str, Any],
    attempt: int,
) -> dict[str, Any]:
    """Run one attempt of a tool/agent/condition/transform/fork/merge node."""
    try:
        if isinstance(node, ToolNode | AgentNode):
            result = await _call(host, run, node_id, node, scope, attempt)
            return _from_result(result)
        if isinstance(node, ConditionNode):
            value = bool(expr.evaluate(node.if_, scope))
            return outcome(True, value, branch=value)
        if isinstance(node, TransformNode):
            return _checked(outcome(True, expr.evaluate(node.expr, scope)))
        if isinstance(node, MergeNode):
            nodes = scope.get("nodes") or {}
            done = {n: nodes[n].get("output") for n in node.needs if nodes.get(n, {}).get("ok")}
            return outcome(True, done)
        return outcome(True)  # fork
    except ExprError as e:
        return outcome(False, error=e.message)
    except TimeoutError:
        return outcome(False, error=f"timed out after {node.timeout_s:g} s")


async def _call(
    host: FlowHost,
    run: RunInfo,
    node_id: str,
    node: ToolNode | AgentNode,
    scope: Mapping[str, Any],
    attempt: int,
) -> NodeResult:
    key = idempotency_key(run.run_id, node_id, attempt)
    if isinstance(node, ToolNode):
        args = expr.interpolate(node.args, scope)
        call = host.call_tool(run, node_id, node.tool, args, key)
    else:
        prompt = expr.interpolate(node.prompt, scope)
        call = (
            host.run_agent(run, node_id, str(prompt), node.tools, node.route, key)
            if node.agent is None
            else host.run_agent(
                run, node_id, str(prompt), node.tools, node.route, key, agent=node.agent
            )
        )
    try:
        return await asyncio.wait_for(call, node.timeout_s)
    except TimeoutError:
        raise
    except Exception:
        # A host must return NodeResult(ok=False) for expected failures; anything else
        # is a bug on its side: keep the traceback in the log, show a generic message.
        log.exception("flow host raised in node %s of run %s", node_id, run.run_id)
        return NodeResult(ok=False, error="internal error while running the node (see logs)")


def _from_result(result: NodeResult) -> dict[str, Any]:
    out = outcome(
        result.ok,
        result.output,
        result.error if not result.ok else None,
        tokens_in=result.tokens_in,
        tokens_out=result.tokens_out,
        tool_calls=result.tool_calls,
    )
    if result.untrusted:
        out["untrusted"] = list(result.untrusted)
    return _checked(out)


def _checked(out: dict[str, Any]) -> dict[str, Any]:
    try:
        size = len(json.dumps(out["output"]))
    except (TypeError, ValueError):
        return {**out, "ok": False, "output": None, "error": "node output is not JSON"}
    if size > MAX_OUTPUT:
        return {**out, "ok": False, "output": None, "error": "node output is too large"}
    return out


def preview(value: Any, limit: int = 200) -> str:
    """A short text rendering of an output for task lists."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"
