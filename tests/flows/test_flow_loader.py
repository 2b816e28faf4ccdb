from pathlib import Path

import pytest

from nexflow.flows import FlowInvalid, load_flow, load_flow_text
from nexflow.flows.model import ApprovalNode, ConditionNode, ToolNode

EXAMPLE = """\
name: ci-failure
description: Triage a failed CI run and ask before re-running it
inputs:
  run_id: {type: string, required: true}
budget_tokens: 20000
nodes:
  fetch:
    type: tool
    tool: run_skill
    args: {name: ci-triage, input: {run_id: "${inputs.run_id}"}}
    retry: {tries: 3, backoff_s: 2}
    timeout_s: 120
    on_error: report
  summarize: {type: agent, needs: [fetch], prompt: "Summarize: ${nodes.fetch.output}", tools: []}
  check:
    {type: condition, needs: [fetch], if: "nodes.fetch.output.failed_jobs > 0",
     then: [ask], else: [done]}
  ask: {type: approval, title: "Re-run the failed jobs?", expires_s: 86400}
  rerun: {type: tool, needs: [ask], tool: run_skill, args: {name: ci-rerun}}
  report: {type: transform, expr: "'failed: ' + nodes.fetch.error"}
  done: {type: merge, needs: [summarize, rerun], strategy: all}
"""


def _issues(text: str) -> list[tuple[int, int, str]]:
    with pytest.raises(FlowInvalid) as info:
        load_flow_text(text, "flows/x.yaml")
    return [(i.line, i.column, i.message) for i in info.value.issues]


def test_loads_the_documented_example(tmp_path: Path) -> None:
    path = tmp_path / "ci-failure.yaml"
    path.write_text(EXAMPLE)
    flow = load_flow(path)
    assert list(flow.nodes) == ["fetch", "summarize", "check", "ask", "rerun", "report", "done"]
    fetch = flow.nodes["fetch"]
    assert isinstance(fetch, ToolNode) and fetch.retry.tries == 3 and fetch.on_error == "report"
    check = flow.nodes["check"]
    assert isinstance(check, ConditionNode) and check.then == ["ask"] and check.else_ == ["done"]
    assert isinstance(flow.nodes["ask"], ApprovalNode)
    assert flow.budget_tokens == 20000
    assert load_flow_text(flow.model_dump_json(by_alias=True)) == flow  # JSON is YAML


def test_reports_many_problems_with_line_and_column() -> None:
    text = """\
name: bad
nodes:
  a: {type: tool, tool: t, needs: [ghost]}
  b: {type: teleport}
  c: {type: condition, if: "1 > 0"}
  d: {type: tool, tool: t, retry: {tries: 0}}
  e: {type: transform, expr: "__import__('os')"}
  f: {type: tool, tool: t, on_error: nowhere, bogus: 1}
  g: {type: wait, webhook: /hooks/x}
"""
    issues = _issues(text)
    assert (3, 36, "unknown node id 'ghost' in 'needs' of 'a'") in issues
    assert any(i[:2] == (4, 7) and "nodes.b.type: unknown node type" in i[2] for i in issues)
    assert (5, 7, "condition 'c' needs 'then' or 'else'") in issues
    assert any(
        i[:2] == (9, 3) and "nodes.g: wait for a webhook is not supported" in i[2] for i in issues
    )
    assert any(i[:2] == (6, 36) and "greater than or equal to 1" in i[2] for i in issues)
    assert any(i[:2] == (7, 24) and "only call allowed" in i[2] for i in issues)
    assert (8, 28, "unknown node id 'nowhere' in 'on_error' of 'f'") in issues
    assert any(i[:2] == (8, 47) and "nodes.f.bogus: Extra inputs" in i[2] for i in issues)
    assert len(issues) == 8


def test_duplicate_ids_cycles_and_self_references() -> None:
    text = """\
name: loops
nodes:
  a: {type: tool, tool: t, needs: [c]}
  b: {type: tool, tool: t, needs: [a]}
  c: {type: tool, tool: t, needs: [b]}
  s: {type: fork}
  s: {type: tool, tool: t, needs: [s]}
"""
    issues = _issues(text)
    assert (7, 3, "duplicate node id 's'") in issues
    assert (7, 36, "node 's' refers to itself in 'needs'") in issues
    assert any(i[:2] == (3, 3) and i[2] == "cycle: a -> b -> c -> a" for i in issues)


def test_cycle_through_an_error_branch() -> None:
    text = """\
name: loop2
nodes:
  a: {type: tool, tool: t, on_error: b}
  b: {type: condition, if: "true", then: [a]}
"""
    assert _issues(text) == [(3, 3, "cycle: a -> b -> a")]


def test_yaml_syntax_and_shape_errors() -> None:
    [(line, _, message)] = _issues("name: x\nnodes: {a: [}\n")
    assert line == 2 and message.startswith("YAML: ")
    assert _issues("- just\n- a list\n") == [(1, 1, "a flow is a mapping")]
    assert _issues("") == [(1, 1, "the flow file is empty")]
    issues = _issues("name: Bad Name\nnodes: {}\n")
    assert {i[0] for i in issues} == {1, 2}


def test_wait_needs_one_of_seconds_or_until() -> None:
    issues = _issues("name: w\nnodes:\n  w: {type: wait}\n")
    assert issues[0][0] == 3 and "exactly one" in issues[0][2]
    flow = load_flow_text(
        "name: w\nnodes:\n  w: {type: wait, until: '2030-01-01T00:00:00+00:00'}\n"
    )
    assert flow.nodes["w"].type == "wait"


def test_missing_file_is_reported() -> None:
    with pytest.raises(FlowInvalid) as info:
        load_flow(Path("/nonexistent/flow.yaml"))
    assert info.value.issues[0].message == "cannot read the flow file"
