"""YAML with line and column for every key: shared by the flow and agent loaders.

PyYAML composes the document into nodes that carry marks; :class:`MarkedYAML` records the
mark of every mapping key and list item by path, so a validation error at a path (a
pydantic ``loc``) is reported at the deepest key or item it has a mark for. Problems are
collected as :class:`~nexflow.flows.errors.FlowIssue` and raised together in a
:class:`~nexflow.flows.errors.FlowInvalid`.
"""

from __future__ import annotations

from typing import Any

import yaml

from nexflow.flows.errors import FlowInvalid, FlowIssue

PathKey = tuple[str | int, ...]
MAX_BYTES = 256_000


class MarkedYAML:
    """One YAML document named ``name`` in messages; ``what`` ("flow", "agent") too."""

    def __init__(self, name: str, text: str, what: str = "flow") -> None:
        self._name = name
        self._text = text
        self._what = what
        self._marks: dict[PathKey, tuple[int, int]] = {(): (1, 1)}
        self._issues: list[FlowIssue] = []

    def _issue(self, path: PathKey, message: str) -> None:
        line, col = self._mark(path)
        self._issues.append(FlowIssue(self._name, line, col, message))

    def _mark(self, path: PathKey) -> tuple[int, int]:
        best: PathKey = ()
        current: PathKey = ()
        for elem in path:
            if (*current, elem) in self._marks:
                current = (*current, elem)
                best = current
        return self._marks[best]

    def _parse(self) -> Any:
        if len(self._text) > MAX_BYTES:
            raise FlowInvalid(
                [FlowIssue(self._name, 0, 0, f"{self._what} larger than {MAX_BYTES}")]
            )
        loader = yaml.SafeLoader(self._text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise FlowInvalid([FlowIssue(self._name, 1, 1, f"the {self._what} file is empty")])
            self._walk(node, ())
            return loader.construct_document(node)
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
            problem = e.problem or "invalid YAML"
            raise FlowInvalid([FlowIssue(self._name, line, col, f"YAML: {problem}")]) from e
        except yaml.YAMLError as e:
            raise FlowInvalid([FlowIssue(self._name, 0, 0, "invalid YAML")]) from e
        finally:
            loader.dispose()

    def _walk(self, node: yaml.Node, path: PathKey) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                sub = (*path, key)
                mark = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                if key in seen:  # YAML keeps the last one: so do the marks
                    what = "node id" if path == ("nodes",) else "key"
                    self._issues.append(FlowIssue(self._name, *mark, f"duplicate {what} '{key}'"))
                    self._marks = {p: m for p, m in self._marks.items() if p[: len(sub)] != sub}
                seen.add(key)
                self._marks[sub] = mark
                self._walk(value_node, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                sub = (*path, i)
                self._marks[sub] = (item.start_mark.line + 1, item.start_mark.column + 1)
                self._walk(item, sub)
