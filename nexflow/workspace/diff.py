"""What a patch changes, in the shapes a reviewer reads (state keys, NXML nodes)."""

from __future__ import annotations

from collections import Counter

from nexflow.panels import NexusPanel, PanelError, parse
from nexflow.workspace.layout import load_state


def state_keys(before: str | None, after: str | None) -> tuple[str, ...]:
    b, a = load_state(before), load_state(after)
    return tuple(k for k in sorted({*b, *a}) if b.get(k) != a.get(k))


def _nodes(source: str | None) -> Counter[str]:
    if not source:
        return Counter()
    try:
        panel: NexusPanel = parse(source)
    except PanelError:
        return Counter()
    names = [f"State#{s.name}" for s in panel.data.states]
    names += [f"Tool#{t.name}" for t in panel.logic.tools]
    for c in panel.view.walk():
        label = c.props.get("label") or c.props.get("title")
        key = label.value if label is not None else (c.trigger.tool if c.trigger else c.path)
        names.append(f"{c.type}#{key}")
    return Counter(names)


def nodes_changed(before: str | None, after: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """NXML nodes added and removed (``Button#Refresh``, ``Tool#restart``, ``State#cpu``)."""
    b, a = _nodes(before), _nodes(after)
    return tuple(sorted((a - b).elements())), tuple(sorted((b - a).elements()))
