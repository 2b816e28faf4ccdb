"""Chat snapshots: a resolved render tree as HTML-safe text plus buttons.

The text uses only ``<b>``, ``<i>``, ``<code>`` and ``<pre>`` and escapes
everything else, so it is valid Telegram HTML and readable after stripping tags.
Every enabled ``Action`` becomes a :class:`ButtonSpec` whose ``action`` is
``panel:<instance id>:<render key>``; :meth:`PanelService.press` runs the tool
behind it with the arguments resolved for the state at press time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

from nexflow.bus.events import ButtonSpec, PanelSnapshotOut
from nexflow.panels.render import RenderNode, RenderTree
from nexflow.panels.runtime import format as fmt
from nexflow.panels.runtime.errors import PanelNotFound
from nexflow.panels.values import js_string
from nexflow.sandbox import JSONObject

MAX_TEXT = 3500
MAX_LINES = 8
MAX_ITEMS = 15
ACTION_PREFIX = "panel:"


def action_for(panel_id: str, key: str) -> str:
    return f"{ACTION_PREFIX}{panel_id}:{key}"


def parse_action(action: str) -> tuple[str, str]:
    """``panel:<id>:<key>`` → ``(id, key)``."""
    body = action.removeprefix(ACTION_PREFIX)
    panel_id, _, key = body.partition(":")
    if not action.startswith(ACTION_PREFIX) or not panel_id or not key:
        raise PanelNotFound(f"{action!r} is not a panel button")
    return panel_id, key


def notices_of(effects: Sequence[JSONObject]) -> list[str]:
    """Texts of ``$emit('toast', ...)`` effects (a string or ``{message}`` payload)."""
    out = []
    for effect in effects:
        if effect.get("kind") == "emit" and effect.get("event") in ("toast", "notify"):
            payload = effect.get("payload")
            if isinstance(payload, dict):
                payload = payload.get("message", payload.get("text"))
            out.append(js_string(payload))
    return out


def build_snapshot(
    tree: RenderTree,
    panel_id: str,
    channel: str,
    chat_id: str,
    notices: Sequence[str] = (),
) -> PanelSnapshotOut:
    return PanelSnapshotOut(
        channel=channel,
        chat_id=chat_id,
        panel_id=panel_id,
        title=tree.title,
        text=snapshot_text(tree, notices),
        buttons=snapshot_buttons(tree, panel_id),
    )


def snapshot_buttons(tree: RenderTree, panel_id: str) -> tuple[ButtonSpec, ...]:
    return tuple(
        ButtonSpec(
            label=js_string(n.props.get("label")) or n.trigger.tool,
            action=action_for(panel_id, n.key),
        )
        for n in tree.walk()
        if n.type == "Action" and n.trigger is not None and not n.props.get("disabled")
    )


def snapshot_text(tree: RenderTree, notices: Sequence[str] = ()) -> str:
    lines = [f"<b>{escape(tree.title)}</b>"]
    for node in tree.walk():
        render = _RENDERERS.get(node.type)
        if render is not None:
            lines.extend(render(node))
        elif node.type == "Layout" and node.props.get("title"):
            lines.append(f"<b>{_e(node.props['title'])}</b>")
    lines.extend(f"ℹ️ {escape(n)}" for n in notices)
    text = "\n".join(line for line in lines if line is not None)
    if len(text) > MAX_TEXT:
        text = _cut(text)
    return text


def _cut(text: str) -> str:
    """Cut at a line boundary outside ``<pre>`` so the HTML stays balanced."""
    out: list[str] = []
    size, in_pre = 0, False
    for line in text.split("\n"):
        if size + len(line) > MAX_TEXT - 20:
            break
        out.append(line)
        size += len(line) + 1
        in_pre = (in_pre or "<pre>" in line) and "</pre>" not in line
    if in_pre:
        out.append("</pre>")
    return "\n".join([*out, "…"])


def _e(value: object) -> str:
    return escape(js_string(value))


def _metric(n: RenderNode) -> list[str]:
    value = f"{js_string(n.props.get('value'))}{js_string(n.props.get('unit'))}"
    trend = fmt.TREND_MARK.get(str(n.props.get("trend")), "")
    return [f"<b>{_e(n.props.get('label'))}</b>: {escape(value)} {trend}".rstrip()]


def _badge(n: RenderNode) -> list[str]:
    tone = fmt.tone_of(n.props.get("value"), n.props.get("tone"))
    return [f"<b>{_e(n.props.get('label'))}</b>: {fmt.TONE_MARK[tone]} {_e(n.props.get('value'))}"]


def _logs(n: RenderNode) -> list[str]:
    flt = n.props.get("filter")
    lines = fmt.filter_lines(n.props.get("data"), flt)
    head = "<i>Logs</i>" + (f" <i>(filter: {_e(flt)})</i>" if flt else "")
    if not lines:
        return [head, "<i>no lines</i>"]
    shown = "\n".join(escape(fmt.line_text(line)) for line in lines[-MAX_LINES:])
    return [head, f"<pre>{shown}</pre>"]


def _text(n: RenderNode) -> list[str]:
    text = _e(n.props.get("text"))
    tone = n.props.get("tone")
    return [
        f"<b>{text}</b>"
        if tone in ("strong", "heading")
        else f"<i>{text}</i>"
        if tone == "muted"
        else text
    ]


def _table(n: RenderNode) -> list[str]:
    cols, rows = fmt.table(n.props.get("data"), n.props.get("columns"))
    if not cols:
        return ["<i>empty table</i>"]
    body = [" | ".join(cols)] + [" | ".join(r) for r in rows[:MAX_LINES]]
    more = [f"… {len(rows) - MAX_LINES} more rows"] if len(rows) > MAX_LINES else []
    return [f"<pre>{escape(chr(10).join(body + more))}</pre>"]


def _list(n: RenderNode) -> list[str]:
    items = n.props.get("items")
    items = items if isinstance(items, list) else []
    check = n.props.get("check_key")
    out = []
    for i, item in enumerate(items[:MAX_ITEMS]):
        mark = f"{i + 1}." if n.props.get("ordered") else "•"
        if isinstance(check, str) and isinstance(item, dict):
            mark = "☑" if item.get(check) else "☐"
        out.append(f"{mark} {escape(fmt.item_label(item, n.props.get('label_key')))}")
    if len(items) > MAX_ITEMS:
        out.append(f"… {len(items) - MAX_ITEMS} more")
    return out or ["<i>empty list</i>"]


def _toggle(n: RenderNode) -> list[str]:
    return [f"<b>{_e(n.props.get('label'))}</b>: {'on' if n.props.get('value') else 'off'}"]


def _chart(n: RenderNode) -> list[str]:
    values = fmt.series(n.props.get("data"), n.props.get("y"))
    title = _e(n.props.get("title") or "Chart")
    return [f"<i>{title}</i>: {fmt.sparkline(values)}" if values else f"<i>{title}</i>: no data"]


def _code(n: RenderNode) -> list[str]:
    return [f"<pre>{_e(n.props.get('code'))}</pre>"]


def _diagram(n: RenderNode) -> list[str]:
    nodes = n.props.get("nodes")
    labels = {
        js_string(x.get("id")): js_string(x.get("label", x.get("id")))
        for x in (nodes if isinstance(nodes, list) else [])
        if isinstance(x, dict)
    }
    edges = n.props.get("edges")
    out = [
        f"{labels.get(js_string(e.get('from')), js_string(e.get('from')))} → "
        f"{labels.get(js_string(e.get('to')), js_string(e.get('to')))}"
        for e in (edges if isinstance(edges, list) else [])[:MAX_ITEMS]
        if isinstance(e, dict)
    ]
    return [f"<pre>{escape(chr(10).join(out))}</pre>"] if out else ["<i>empty diagram</i>"]


def _input(n: RenderNode) -> list[str]:
    return [f"✎ <i>{_e(n.props.get('label') or n.props.get('placeholder') or 'input')}</i>"]


_RENDERERS: dict[str, Callable[[RenderNode], list[str]]] = {
    "Metric": _metric,
    "StatusBadge": _badge,
    "LogStream": _logs,
    "Text": _text,
    "Markdown": lambda n: [_e(n.props.get("content"))],
    "Table": _table,
    "List": _list,
    "Toggle": _toggle,
    "Chart": _chart,
    "Code": _code,
    "Diagram": _diagram,
    "Input": _input,
}
