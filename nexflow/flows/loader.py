"""Load a flow from YAML and report every problem with file, line and column.

The YAML marks (:mod:`nexflow.flows.yaml_marks`) give every mapping key and list item a
line and column by path; we validate the plain data with pydantic, and map each
pydantic error location back to the deepest path we have a mark for. Graph checks
(unknown ids, duplicates, cycles, conditions without branches, bad expressions, trigger
arguments that do not fit the inputs) run on the same paths, so all problems come back
together in one :class:`FlowInvalid`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nexflow.flows import expr
from nexflow.flows.errors import ExprError, FlowInvalid, FlowIssue
from nexflow.flows.graph import find_cycle
from nexflow.flows.model import Flow, bind_inputs
from nexflow.flows.yaml_marks import MAX_BYTES, MarkedYAML, PathKey

_TYPES = ("tool", "agent", "condition", "fork", "merge", "transform", "approval", "wait", "flow")
_EXPR_FIELDS = ("args", "prompt", "title", "detail")


def load_flow(source: str | Path, *, text: str | None = None) -> Flow:
    """Load ``source`` (a path), or ``text`` named ``source`` in messages.

    Raises :class:`FlowInvalid` with every problem found.
    """
    name = str(source)
    if text is None:
        try:
            raw = Path(source).read_bytes()
        except OSError as e:
            raise FlowInvalid([FlowIssue(name, 0, 0, "cannot read the flow file")]) from e
        if len(raw) > MAX_BYTES:
            raise FlowInvalid([FlowIssue(name, 0, 0, f"flow file larger than {MAX_BYTES}")])
        text = raw.decode("utf-8", errors="replace")
    return _Loader(name, text).load()


def load_flow_text(text: str, name: str = "<flow>") -> Flow:
    """Load a flow from YAML text (``name`` appears in messages)."""
    return load_flow(name, text=text)


class _Loader(MarkedYAML):
    def load(self) -> Flow:
        data = self._parse()
        if not isinstance(data, dict):
            raise FlowInvalid([*self._issues, FlowIssue(self._name, 1, 1, "a flow is a mapping")])
        flow: Flow | None = None
        try:
            flow = Flow.model_validate(data)
        except ValidationError as e:
            for err in e.errors():
                self._pydantic_issue(err)
        self._check_references(data)
        self._check_graph(data)
        if flow is not None:
            self._check_triggers(flow)
        if self._issues:
            raise FlowInvalid(self._issues)
        assert flow is not None
        return flow

    def _pydantic_issue(self, err: Any) -> None:
        loc: PathKey = tuple(err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "union_tag_invalid":
            msg = f"unknown node type; use one of: {', '.join(_TYPES)}"
            loc = (*loc, "type")
        elif err["type"] == "union_tag_not_found":
            msg = "a node needs a 'type'"
        # drop the union tag pydantic inserts after the node id
        if len(loc) > 2 and loc[0] == "nodes" and loc[2] in _TYPES:
            loc = (*loc[:2], *loc[3:])
        shown = ".".join(str(p) for p in loc)
        self._issue(loc, f"{shown}: {msg}" if shown else msg)

    def _check_references(self, data: dict[str, Any]) -> None:
        nodes = data.get("nodes")
        if not isinstance(nodes, dict):
            return
        ids = set(nodes)
        for nid, spec in nodes.items():
            if not isinstance(spec, dict):
                continue
            for field, i, target in _refs(spec):
                path: PathKey = ("nodes", nid, field) if i is None else ("nodes", nid, field, i)
                if not isinstance(target, str):
                    continue
                if field == "on_error" and target == "continue":
                    continue
                if target == nid:
                    self._issue(path, f"node '{nid}' refers to itself in '{field}'")
                elif target not in ids:
                    self._issue(path, f"unknown node id '{target}' in '{field}' of '{nid}'")
            if spec.get("type") == "condition" and not spec.get("then") and not spec.get("else"):
                self._issue(("nodes", nid, "type"), f"condition '{nid}' needs 'then' or 'else'")

    def _check_graph(self, data: dict[str, Any]) -> None:
        nodes = data.get("nodes")
        if not isinstance(nodes, dict):
            return
        succ: dict[str, list[str]] = {str(nid): [] for nid in nodes}
        for nid, spec in nodes.items():
            if not isinstance(spec, dict):
                continue
            for field, _, target in _refs(spec):
                if not isinstance(target, str) or target == "continue":
                    continue
                if field == "needs":
                    succ.setdefault(target, []).append(nid)
                else:
                    succ[nid].append(target)
            for field in ("if", "expr"):
                if isinstance(spec.get(field), str):
                    self._check_expr(("nodes", nid, field), spec[field])
            for field in _EXPR_FIELDS:
                for source in expr.find_interpolations(spec.get(field)):
                    self._check_expr(("nodes", nid, field), source)
        cycle = find_cycle({k: v for k, v in succ.items() if k in nodes})
        if cycle:
            self._issue(("nodes", cycle[0]), f"cycle: {' -> '.join(cycle)}")

    def _check_triggers(self, flow: Flow) -> None:
        # a trigger's args are the run's inputs: refuse at load what every fire would
        for i, trigger in enumerate(flow.triggers):
            for problem in bind_inputs(flow, trigger.args)[1]:
                self._issue(("triggers", i, "args"), f"triggers.{i}.args: {problem}")

    def _check_expr(self, path: PathKey, source: str) -> None:
        try:
            expr.check(source)
        except ExprError as e:
            self._issue(path, f"{path[-1]}: {e.message}")


def _refs(spec: dict[str, Any]) -> Iterator[tuple[str, int | None, Any]]:
    for field in ("needs", "then", "else"):
        value = spec.get(field)
        if isinstance(value, list):
            for i, target in enumerate(value):
                yield field, i, target
    if "on_error" in spec:
        yield "on_error", None, spec["on_error"]
