"""The Nexus Object Graph (NOG): what a workspace is about and how it connects.

Three kinds of node (seed 000, NexusOS):

- **entity**: the things the project is about: each panel state key (``todo.items``),
  the items of list states (``todo.items[0]``, labelled by their ``title``/``text``/
  ``name``/... field), notes (``notes/plan.md``) and their headings
  (``notes/plan.md#servers``), other files.
- **logic**: panel tools (``todo.add_item``) and workspace skills (``skill:deploy``).
- **view**: panels (``todo``) and the components that show state or trigger a tool
  (``todo@view/0/3``).

Typed relations: ``has`` (panel → its states, tools, components), ``contains`` (state →
item, note → heading), ``shows`` (component → state it binds), ``triggers`` (component →
tool), ``updates`` / ``reads`` (tool → state its handler assigns / reads) and
``mentions`` (an item or heading whose text names another entity's label, across
sources: how a todo item "restart db-1" links to the server "db-1").

Every node and edge belongs to a *source* (a panel id or a file path); an update
replaces one source's nodes and recomputes only the ``mentions`` touching it.
:meth:`NexusObjectGraph.to_context` is the compact text the sync prompt carries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from nexflow.panels import NexusPanel, state_refs
from nexflow.panels.ast import Component

NodeKind = Literal["entity", "logic", "view"]
Relation = Literal["has", "contains", "shows", "triggers", "updates", "reads", "mentions"]
MAX_ITEMS = 50  # list items per state kept as entities
_LABEL_KEYS = ("title", "name", "label", "text", "id", "path", "service", "host")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)
_ASSIGN = re.compile(r"\$state\s*\.\s*([A-Za-z_$][\w$]*)\s*(?:=(?!=)|\+=|-=|\*=|/=|\.push\()")
_DESCRIPTION = re.compile(r"^description:\s*['\"]?(.+?)['\"]?\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    kind: NodeKind
    type: str  # panel, component, tool, state, item, note, heading, skill, file
    label: str
    source: str
    detail: str = ""  # a short description for the context
    text: str = ""  # what mentions are searched in (items, headings)


@dataclass(frozen=True, slots=True)
class Edge:
    src: str
    rel: Relation
    dst: str


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "section"


def _clip(text: str, n: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _item_label(item: Any) -> str:
    if isinstance(item, dict):
        for key in _LABEL_KEYS:
            value = item.get(key)
            scalar = isinstance(value, str | int | float) and not isinstance(value, bool)
            if scalar and str(value).strip():
                return _clip(str(value), 48)
        if "from" in item and "to" in item:
            return _clip(f"{item['from']}→{item['to']}", 48)
        return ""
    if isinstance(item, str | int | float) and not isinstance(item, bool):
        return _clip(str(item), 48)
    return ""


def _item_text(item: Any) -> str:
    if isinstance(item, dict):
        return " ".join(str(v) for v in item.values() if isinstance(v, str))
    return str(item) if isinstance(item, str) else ""


def _item_flags(item: Any) -> str:
    if not isinstance(item, dict):
        return ""
    flags = [
        f"{k}={str(v).lower() if isinstance(v, bool) else v}"
        for k, v in item.items()
        if isinstance(v, bool | int | float) and k not in _LABEL_KEYS
    ]
    return " ".join(flags[:4])


def _describe_value(value: Any) -> str:
    if isinstance(value, list):
        return f"list[{len(value)}]"
    if isinstance(value, dict):
        return "object{" + ",".join(list(value)[:6]) + "}"
    if isinstance(value, str):
        return f'"{_clip(value, 40)}"'
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _component_label(c: Component) -> str:
    for key in ("label", "title", "placeholder", "text"):
        prop = c.props.get(key)
        if prop is not None and not prop.is_bound and prop.value.strip():
            return _clip(prop.value, 30)
    return ""


class NexusObjectGraph:
    def __init__(self, name: str = "") -> None:
        self.name = name
        self.nodes: dict[str, Node] = {}
        self.edges: set[Edge] = set()
        self._sources: dict[str, set[str]] = {}

    # -- building -----------------------------------------------------------------

    def _add(self, node: Node) -> None:
        self.nodes[node.id] = node
        self._sources.setdefault(node.source, set()).add(node.id)

    def _link(self, src: str, rel: Relation, dst: str) -> None:
        if src in self.nodes and dst in self.nodes:
            self.edges.add(Edge(src, rel, dst))

    def remove(self, source: str) -> None:
        """Drop every node of ``source`` and every edge touching them."""
        gone = self._sources.pop(source, set())
        for node_id in gone:
            self.nodes.pop(node_id, None)
        if gone:
            self.edges = {e for e in self.edges if e.src not in gone and e.dst not in gone}

    def update_panel(self, panel_id: str, panel: NexusPanel, state: Mapping[str, Any]) -> None:
        """Replace one panel's nodes (its definition and current state)."""
        self.remove(panel_id)
        p = panel_id
        self._add(Node(p, "view", "panel", panel.title, p, _clip(panel.description or "", 80)))
        for s in panel.data.states:
            value = state.get(s.name)
            shown = _describe_value(value)
            detail = shown if isinstance(value, list | dict) else f"{s.type} = {shown}"
            if s.description:
                detail += f" — {_clip(s.description, 50)}"
            sid = f"{p}.{s.name}"
            self._add(Node(sid, "entity", "state", s.name, p, detail))
            self._link(p, "has", sid)
            if isinstance(value, list):
                for i, item in enumerate(value[:MAX_ITEMS]):
                    iid = f"{sid}[{i}]"
                    label = _item_label(item)
                    self._add(
                        Node(iid, "entity", "item", label, p, _item_flags(item), _item_text(item))
                    )
                    self._link(sid, "contains", iid)
        for t in panel.logic.tools:
            tid = f"{p}.{t.name}"
            args = ", ".join(f"{a.name}{'*' if a.required else ''}:{a.type}" for a in t.args)
            self._add(Node(tid, "logic", "tool", t.name, p, f"({args}) {_clip(t.description, 50)}"))
            self._link(p, "has", tid)
            source = t.handler.source if t.handler is not None else ""
            written = {m.group(1) for m in _ASSIGN.finditer(source)}
            for ref in state_refs(source):
                self._link(tid, "updates" if ref in written else "reads", f"{p}.{ref}")
        for c in panel.view.walk():
            refs = {r for prop in c.props.values() for r in prop.refs}
            if not refs and c.trigger is None:
                continue
            cid = f"{p}@{c.path}"
            self._add(Node(cid, "view", "component", _component_label(c), p, c.type))
            self._link(p, "has", cid)
            for ref in sorted(refs):
                self._link(cid, "shows", f"{p}.{ref}")
            if c.trigger is not None:
                self._link(cid, "triggers", f"{p}.{c.trigger.tool}")
        self._mentions(panel_id)

    def update_file(self, path: str, text: str) -> None:
        """Replace one file's nodes: notes and their headings, skills, other files."""
        self.remove(path)
        if path.endswith("SKILL.md") and path.startswith("skills/"):
            name = path.split("/")[1] if path.count("/") >= 2 else path
            found = _DESCRIPTION.search(text)
            detail = _clip(found.group(1), 70) if found else ""
            self._add(Node(f"skill:{name}", "logic", "skill", name, path, detail))
            return
        if not path.endswith(".md"):
            self._add(Node(path, "entity", "file", path, path, f"{len(text)} chars"))
            return
        first = _HEADING.search(text)
        title = first.group(2) if first else path.rsplit("/", 1)[-1]
        self._add(Node(path, "entity", "note", _clip(title, 48), path, text=_clip(text, 400)))
        for match in _HEADING.finditer(text):
            heading = match.group(2)
            hid = f"{path}#{_slug(heading)}"
            end = text.find("\n#", match.end())
            body = text[match.end() : end if end != -1 else len(text)]
            self._add(
                Node(hid, "entity", "heading", _clip(heading, 48), path, text=f"{heading} {body}")
            )
            self._link(path, "contains", hid)
        self._mentions(path)

    def _mentions(self, source: str) -> None:
        """Recompute ``mentions`` between ``source`` and every other source, both ways."""
        # remove() already dropped the edges of the nodes this source replaced
        mine = [self.nodes[i] for i in self._sources.get(source, ())]
        others = [n for n in self.nodes.values() if n.source != source]
        for a, b in ((x, y) for x in mine for y in others):
            for speaker, named in ((a, b), (b, a)):
                if speaker.text and _names(speaker.text, named):
                    self.edges.add(Edge(speaker.id, "mentions", named.id))

    # -- reading ------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        out = {"entity": 0, "logic": 0, "view": 0}
        for n in self.nodes.values():
            out[n.kind] += 1
        return {**out, "relations": len(self.edges)}

    def related(self, node_id: str) -> list[Edge]:
        return sorted(e for e in self.edges if node_id in (e.src, e.dst))  # type: ignore[type-var]

    def to_context(self, focus: str | None = None) -> str:
        """The compact text for the LLM: one block per panel / file, then cross links."""
        c = self.counts()
        panels = sorted(n.id for n in self.nodes.values() if n.type == "panel")
        if focus in panels:
            panels.remove(focus)
            panels.insert(0, focus)
        lines = [
            f"NOG {self.name}: {len(panels)} panels, {c['entity']} entities, {c['logic']} "
            f"logic, {c['view']} views, {c['relations']} relations"
        ]
        out: dict[str, list[Edge]] = {}
        for e in self.edges:
            out.setdefault(e.src, []).append(e)
        for pid in panels:
            lines.extend(self._panel_block(pid, out))
        for source in sorted(s for s in self._sources if s not in panels):
            lines.extend(self._file_block(source))
        links = sorted(f"{e.src} mentions {e.dst}" for e in self.edges if e.rel == "mentions")
        if links:
            lines.append("links:")
            lines.extend(f" {link}" for link in links)
        return "\n".join(lines)

    def _panel_block(self, pid: str, out: Mapping[str, list[Edge]]) -> list[str]:
        panel = self.nodes[pid]
        head = f'[panel {pid}] "{panel.label}"'
        lines = [head + (f" — {panel.detail}" if panel.detail else "")]
        views: list[str] = []
        order = {"state": 0, "tool": 1, "component": 2}
        members = sorted(
            (self.nodes[e.dst] for e in out.get(pid, ())),
            key=lambda n: (order.get(n.type, 3), n.label, n.id),
        )
        for node in members:
            if node.type == "state":
                lines.append(f" state {node.label}: {node.detail}")
                for item_edge in sorted(out.get(node.id, ()), key=_item_order):
                    item = self.nodes[item_edge.dst]
                    if not item.label and not item.detail:
                        continue
                    flags = f" {item.detail}" if item.detail else ""
                    lines.append(f'  [{item.id.rsplit("[", 1)[1]} "{item.label}"{flags}')
            elif node.type == "tool":
                effects = [
                    f"{'→' if e.rel == 'updates' else '←'}{self.nodes[e.dst].label}"
                    for e in sorted(out.get(node.id, ()), key=lambda e: (e.rel, e.dst))
                ]
                lines.append(f" tool {node.label}{node.detail} {' '.join(effects)}".rstrip())
            elif node.type == "component":
                bits = [node.detail + (f'"{node.label}"' if node.label else "")]
                for e in out.get(node.id, ()):
                    target = self.nodes[e.dst].label
                    bits.append(f"<{target}" if e.rel == "shows" else f"⇒{target}")
                views.append("".join(bits))
        if views:
            lines.append(" view " + ", ".join(sorted(views)))
        return lines

    def _file_block(self, source: str) -> list[str]:
        mine = self._sources[source]
        nodes = [n for n in self.nodes.values() if n.id in mine]  # document order
        heads = [n for n in nodes if n.type == "heading"]
        main = next((n for n in nodes if n.type != "heading"), None)
        if main is None:
            return []
        line = f"[{main.type} {main.id}]" + (f' "{main.label}"' if main.type == "note" else "")
        if main.detail:
            line += f" {main.detail}"
        if heads:
            line += " § " + " | ".join(h.label for h in heads)
        return [line]


def _item_order(edge: Edge) -> int:
    tail = edge.dst.rsplit("[", 1)[-1].rstrip("]")
    return int(tail) if tail.isdigit() else 0


def _names(text: str, node: Node) -> bool:
    """Does ``text`` name ``node`` (its label as a whole word, case-insensitive)?"""
    if node.type not in {"item", "heading", "note"} or len(node.label) < 3:
        return False
    label = node.label.lower()
    low = text.lower()
    start = low.find(label)
    while start != -1:
        end = start + len(label)
        before = low[start - 1] if start else " "
        after = low[end] if end < len(low) else " "
        if not (before.isalnum() or after.isalnum()):
            return True
        start = low.find(label, start + 1)
    return False


def build_nog(
    name: str,
    panels: Iterable[tuple[str, NexusPanel, Mapping[str, Any]]],
    files: Mapping[str, str],
) -> NexusObjectGraph:
    """A graph from a workspace's panels (id, definition, state) and other files."""
    graph = NexusObjectGraph(name)
    for panel_id, panel, state in panels:
        graph.update_panel(panel_id, panel, state)
    for path, text in sorted(files.items()):
        graph.update_file(path, text)
    return graph
