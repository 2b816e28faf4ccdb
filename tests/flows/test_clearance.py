"""Approvals clear a node by graph position (nexflow.flows.clearance), not by time."""

from __future__ import annotations

from typing import Any

from nexflow.flows import load_flow_text
from nexflow.flows.clearance import Clearance, clearance, upstream


def flow(body: str) -> Any:
    return load_flow_text("name: t\nnodes:\n" + body, "t.yaml")


def ok(output: Any = None, untrusted: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {"ok": True, "status": "done", "output": output, "error": None}
    if untrusted:
        out["untrusted"] = list(untrusted)
    return out


YES = ok({"approved": True, "by": "u"})
NO = {"ok": False, "status": "failed", "output": {"approved": False}, "error": "declined"}


def test_an_approval_upstream_clears_a_node_with_no_taint() -> None:
    f = flow(
        "  ask: {type: approval, title: 'Go?'}\n  d: {type: tool, tool: deploy, needs: [ask]}\n"
    )
    assert clearance(f, "d", {"ask": YES}) == Clearance((), "ask")
    assert clearance(f, "d", {"ask": NO}) == Clearance((), "")


def test_an_approval_on_a_parallel_branch_never_clears() -> None:
    f = flow(
        "  ask: {type: approval, title: 'Go?'}\n"
        "  pause: {type: wait, seconds: 1}\n"
        "  d: {type: tool, tool: deploy, needs: [pause]}\n"
    )
    # answered yes long before d runs: still not on d's path
    assert clearance(f, "d", {"ask": YES, "pause": ok()}).approved_by == ""


def test_taint_before_the_approval_is_cleared_taint_after_it_is_not() -> None:
    before = flow(
        "  fetch: {type: tool, tool: web_fetch}\n"
        "  ask: {type: approval, title: 'Go?', needs: [fetch]}\n"
        "  w: {type: tool, tool: write, needs: [ask]}\n"
    )
    results = {"fetch": ok("page", ("web_fetch",)), "ask": YES}
    assert clearance(before, "w", results) == Clearance(("web_fetch",), "ask")

    after = flow(
        "  ask: {type: approval, title: 'Go?'}\n"
        "  fetch: {type: tool, tool: web_fetch, needs: [ask]}\n"
        "  w: {type: tool, tool: write, needs: [fetch]}\n"
    )
    results = {"ask": YES, "fetch": ok("page", ("web_fetch",))}
    assert clearance(after, "w", results) == Clearance(("web_fetch",), "")


def test_taint_on_a_branch_the_node_cannot_read_does_not_reach_it() -> None:
    f = flow(
        "  side: {type: tool, tool: web_fetch}\n"
        "  a: {type: tool, tool: calc}\n"
        "  w: {type: tool, tool: write, needs: [a]}\n"
        "  r: {type: tool, tool: write, needs: [a], args: {text: '${nodes.side.output}'}}\n"
    )
    results = {"side": ok("page", ("web_fetch",)), "a": ok(1)}
    assert clearance(f, "w", results).tainted == ()
    # reading the branch's output is a path too
    assert clearance(f, "r", results).tainted == ("web_fetch",)


def test_reading_nodes_dynamically_reads_every_node() -> None:
    f = flow(
        "  side: {type: tool, tool: web_fetch}\n"
        '  w: {type: tool, tool: write, args: {text: "${nodes[inputs.which].output}"}}\n'
    )
    assert upstream(f)["w"] == {"side"}
    assert clearance(f, "w", {"side": ok("x", ("web_fetch",))}).tainted == ("web_fetch",)


def test_conditions_and_error_branches_are_paths() -> None:
    f = flow(
        "  ask: {type: approval, title: 'Go?'}\n"
        "  check: {type: condition, if: 'true', then: [d], needs: [ask]}\n"
        "  d: {type: tool, tool: deploy, on_error: fix}\n"
        "  fix: {type: tool, tool: deploy}\n"
    )
    ups = upstream(f)
    assert ups["d"] == {"ask", "check"} and ups["fix"] == {"ask", "check", "d"}
    assert clearance(f, "fix", {"ask": YES, "check": ok(True)}).approved_by == "ask"


def test_a_run_inherits_its_inputs_taint_and_a_sub_flow_its_callers_approval() -> None:
    f = flow("  w: {type: tool, tool: write}\n  f2: {type: tool, tool: web_fetch}\n")
    webhook = Clearance(("webhook:ci",), "")
    assert clearance(f, "w", {}, webhook) == Clearance(("webhook:ci",), "")
    called = Clearance(("webhook:ci",), "outer_ask")  # the calling node was cleared
    assert clearance(f, "w", {}, called) == Clearance(("webhook:ci",), "outer_ask")
    g = flow("  f2: {type: tool, tool: web_fetch}\n  w: {type: tool, tool: write, needs: [f2]}\n")
    tainted_inside = {"f2": ok("x", ("web_fetch",))}
    assert clearance(g, "w", tainted_inside, called).approved_by == ""  # new taint inside
