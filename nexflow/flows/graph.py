"""The flow graph: edges, static checks and the scheduling rule (pure, no I/O).

Three kinds of incoming edge activate a node:

- ``needs`` (data): active when the needed node finished (ok, or failed with
  ``on_error: continue``); inactive when it was skipped or failed into its error branch.
- ``branch``: a condition lists the node in ``then``/``else``; active when the condition
  took that branch, inactive otherwise.
- ``error``: a node names it in ``on_error``; active when that node failed.

A node with no incoming edge is a root. Otherwise it waits until every incoming edge is
resolved (``merge`` with ``strategy: any`` runs as soon as one need is active), then it is
skipped if it has gating edges (branch/error) and none is active, or if it has needs and
none is active; else it runs. So nodes that need only skipped nodes are skipped, and a
merge runs with whatever branches were taken.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from nexflow.flows.model import ConditionNode, Flow, MergeNode

EdgeKind = Literal["needs", "branch", "error"]


class NodeState(StrEnum):
    """Where a node is in a run (the engine's view while scheduling)."""

    PENDING = "pending"
    DONE = "done"  # ok, or failed with on_error: continue
    FAILED = "failed"  # failed (error branch taken, or fatal)
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Edge:
    """``source`` activates ``target``."""

    source: str
    target: str
    kind: EdgeKind
    branch: bool | None = None  # for kind="branch": True = then, False = else


def edges(flow: Flow) -> list[Edge]:
    """Every edge of ``flow``, including ones to unknown ids (the loader reports those)."""
    out: list[Edge] = []
    for nid, node in flow.nodes.items():
        out.extend(Edge(need, nid, "needs") for need in node.needs)
        if isinstance(node, ConditionNode):
            out.extend(Edge(nid, t, "branch", True) for t in node.then)
            out.extend(Edge(nid, t, "branch", False) for t in node.else_)
        if node.on_error and node.on_error != "continue":
            out.append(Edge(nid, node.on_error, "error"))
    return out


def find_cycle(succ: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A cycle in ``succ`` (node -> successors) as ids, first repeated at the end.
    Self-edges and unknown ids are ignored (the loader reports them separately)."""
    color = dict.fromkeys(succ, 0)
    for root in succ:
        if color[root]:
            continue
        path: list[str] = []
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            nid, i = stack.pop()
            if i == 0:
                color[nid] = 1
                path.append(nid)
            targets = [t for t in succ[nid] if t in color and t != nid]
            if i < len(targets):
                stack.append((nid, i + 1))
                nxt = targets[i]
                if color[nxt] == 1:
                    return [*path[path.index(nxt) :], nxt]
                if color[nxt] == 0:
                    stack.append((nxt, 0))
            else:
                color[nid] = 2
                path.pop()
    return None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the scheduler needs to know about a finished node."""

    state: NodeState
    branch: bool | None = None  # a condition's result


class Scheduler:
    """Decides, from the states so far, which pending nodes run next and which are skipped."""

    def __init__(self, flow: Flow) -> None:
        self._flow = flow
        self._incoming: dict[str, list[Edge]] = {nid: [] for nid in flow.nodes}
        for e in edges(flow):
            if e.target in self._incoming and e.source in flow.nodes:
                self._incoming[e.target].append(e)

    def step(self, outcomes: Mapping[str, Outcome]) -> tuple[list[str], list[str]]:
        """(ready, newly skipped) in file order; skips cascade within one call."""
        known = dict(outcomes)
        skipped: list[str] = []
        changed = True
        while changed:
            changed = False
            for nid in self._flow.nodes:
                if nid not in known and self._decide(nid, known) == "skip":
                    known[nid] = Outcome(NodeState.SKIPPED)
                    skipped.append(nid)
                    changed = True
        ready = [
            nid
            for nid in self._flow.nodes
            if nid not in known and self._decide(nid, known) == "run"
        ]
        return ready, skipped

    def _decide(self, nid: str, known: Mapping[str, Outcome]) -> str:
        incoming = self._incoming[nid]
        if not incoming:
            return "run"
        resolved = {id(e): _active(e, known.get(e.source)) for e in incoming}
        needs = [e for e in incoming if e.kind == "needs"]
        gating = [e for e in incoming if e.kind != "needs"]
        node = self._flow.nodes[nid]
        if isinstance(node, MergeNode) and node.strategy == "any":
            gates_open = not gating or any(resolved[id(e)] for e in gating)
            if gates_open and any(resolved[id(e)] for e in needs):
                return "run"
        if any(v is None for v in resolved.values()):
            return "wait"
        if gating and not any(resolved[id(e)] for e in gating):
            return "skip"
        if needs and not any(resolved[id(e)] for e in needs):
            return "skip"
        return "run"


def _active(edge: Edge, outcome: Outcome | None) -> bool | None:
    """True/False once the source has finished, None while it has not."""
    if outcome is None:
        return None
    if edge.kind == "needs":
        return outcome.state is NodeState.DONE
    if edge.kind == "branch":
        return outcome.state is NodeState.DONE and outcome.branch is edge.branch
    return outcome.state is NodeState.FAILED
