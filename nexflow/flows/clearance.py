"""Which approvals clear a node, by its position in the graph (pure, no I/O).

A tool call that needs the user's confirmation never gets it inside a flow: the flow
must have asked first, with an ``approval`` node. The rule is by graph position:

- A node's **upstream** is every node that ran before it and whose result it can see:
  the sources of its incoming edges (needs, condition branches, error branches) and the
  nodes its expressions read (``${nodes.fetch.output}``), transitively.
- A node is **tainted** by every upstream node whose output was untrusted (the trust
  gate's verdict on a tool's output, or untrusted output seen inside an agent node), and
  by the run's own inputs when they came from outside (a webhook, a panel's button).
- A node is **cleared** by an approval node upstream of it that was answered yes and
  that has every tainting node upstream of *itself*: the approval came after the
  untrusted output on the path, so the user answered with it in view.

An approval on a parallel branch never clears a node, however early it was answered,
and untrusted output on a parallel branch the node cannot read never taints it.
A sub-flow starts with the clearance of the node that called it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nexflow.flows import expr
from nexflow.flows.errors import ExprError
from nexflow.flows.graph import edges
from nexflow.flows.model import (
    AgentNode,
    ApprovalNode,
    ConditionNode,
    Flow,
    Node,
    SubFlowNode,
    ToolNode,
    TransformNode,
)


@dataclass(frozen=True, slots=True)
class Clearance:
    """What one node may do: ``tainted`` names the untrusted sources upstream of it;
    ``approved_by`` is the approval node that clears it ('' when none does)."""

    tainted: tuple[str, ...] = ()
    approved_by: str = ""


def upstream(flow: Flow) -> dict[str, frozenset[str]]:
    """Every node's upstream (see the module's docstring)."""
    direct: dict[str, set[str]] = {nid: set() for nid in flow.nodes}
    for edge in edges(flow):
        if edge.target in direct and edge.source in flow.nodes:
            direct[edge.target].add(edge.source)
    for nid, node in flow.nodes.items():
        reads = _reads(node)
        direct[nid] |= (set(flow.nodes) if reads is None else reads & set(flow.nodes)) - {nid}
    closed = {nid: set(sources) for nid, sources in direct.items()}
    changed = True
    while changed:  # the transitive closure; a fixpoint, so reads that loop are fine
        changed = False
        for nid, found in closed.items():
            grown = found.union(*(closed[s] for s in found)) - {nid}
            if grown != found:
                closed[nid], changed = grown, True
    return {nid: frozenset(found) for nid, found in closed.items()}


def clearance(
    flow: Flow,
    node_id: str,
    results: Mapping[str, Mapping[str, Any]],
    inherited: Clearance = Clearance(),
    ups: Mapping[str, frozenset[str]] | None = None,
) -> Clearance:
    """``node_id``'s clearance from the results of the nodes that ran so far;
    ``inherited`` is the run's own (its inputs' taint; a sub-flow's calling node's)."""
    ups = upstream(flow) if ups is None else ups
    mine = ups.get(node_id, frozenset())
    tainting = {t for t in mine if _untrusted(results.get(t))}
    labels = list(inherited.tainted)
    for t in sorted(tainting):
        labels.extend(s for s in _untrusted(results.get(t)) if s not in labels)
    approved_by = ""
    for a in flow.nodes:  # file order: the first that clears
        if a in mine and _approved(flow.nodes[a], results.get(a)) and tainting <= ups[a]:
            approved_by = a
            break
    if not approved_by and inherited.approved_by and not tainting:
        approved_by = inherited.approved_by
    return Clearance(tuple(labels), approved_by)


def _untrusted(result: Mapping[str, Any] | None) -> tuple[str, ...]:
    if not result:
        return ()
    return tuple(str(s) for s in result.get("untrusted") or ())


def _approved(node: Node, result: Mapping[str, Any] | None) -> bool:
    if not isinstance(node, ApprovalNode) or not result or not result.get("ok"):
        return False
    output = result.get("output")
    return isinstance(output, Mapping) and output.get("approved") is True


def _reads(node: Node) -> set[str] | None:
    """The node ids ``node``'s expressions read; None: it may read any."""
    sources: list[str] = []
    if isinstance(node, ToolNode | SubFlowNode):
        sources += expr.find_interpolations(node.args)
    elif isinstance(node, AgentNode):
        sources += expr.find_interpolations(node.prompt)
    elif isinstance(node, ApprovalNode):
        sources += expr.find_interpolations([node.title, node.detail])
    elif isinstance(node, ConditionNode):
        sources.append(node.if_)
    elif isinstance(node, TransformNode):
        sources.append(node.expr)
    found: set[str] = set()
    for source in sources:
        try:
            refs = expr.node_refs(source)
        except ExprError:
            return None
        if refs is None:
            return None
        found |= refs
    return found
