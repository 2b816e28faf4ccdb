"""The server-rendered HTML preview of a panel (``GET /panels/{id}``).

Every value is escaped; the page has no third-party assets. Components with a
trigger carry ``data-tool`` and ``data-args`` (JSON); a small script POSTs them to
``/api/v1/panels/{id}/tools/{tool}`` (with the gateway token the chat page keeps
in ``sessionStorage``) and reloads, showing the toast or the error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from html import escape

from pydantic import JsonValue

from nexflow.panels.render import RenderNode, RenderTree
from nexflow.panels.runtime import format as fmt
from nexflow.panels.values import js_string

_CSS = """
body{font:15px/1.4 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
main{max-width:960px;margin:24px auto;padding:16px 20px;background:#fff;border-radius:10px;
box-shadow:0 1px 4px #0002}
h1{font-size:20px;margin:0 0 12px}h2{font-size:16px;margin:8px 0}
.row{display:grid;grid-template-columns:repeat(12,1fr);gap:12px;margin:0 0 12px}
.metric .label,.badge-label{color:#667;font-size:13px;display:block}
.metric .value{font-size:26px;font-weight:600}.trend{margin-left:6px;color:#667}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600}
.tone-ok{background:#d9f5e3;color:#12693a}.tone-warn{background:#fff1cc;color:#7a5600}
.tone-error{background:#fde0e0;color:#9b1c1c}.tone-info{background:#e0ecff;color:#1d4fa3}
button{font:inherit;padding:6px 14px;border-radius:6px;border:1px solid #bbc;background:#fff;
cursor:pointer}button.primary{background:#2463eb;color:#fff;border-color:#2463eb}
button.danger{background:#d93636;color:#fff;border-color:#d93636}button:disabled{opacity:.5}
pre{background:#111827;color:#e5e7eb;padding:10px;border-radius:6px;overflow:auto;margin:0}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #e3e5ea;padding:4px 8px;
text-align:left}.muted{color:#667}.heading{font-size:18px;font-weight:600}.strong{font-weight:600}
.markdown{white-space:pre-wrap}#toast{min-height:1.4em;color:#12693a}#toast.error{color:#9b1c1c}
svg{width:100%;background:#fafbfc;border-radius:6px}
"""

_JS = """
const main = document.querySelector("main"), toast = document.getElementById("toast");
const token = sessionStorage.getItem("nexflow-token") || "";
function show(text, bad) { toast.textContent = text; toast.className = bad ? "error" : ""; }
const saved = sessionStorage.getItem("nexflow-panel-toast");
if (saved) { show(saved, false); sessionStorage.removeItem("nexflow-panel-toast"); }
async function run(tool, args) {
  const url = "/api/v1/panels/" + encodeURIComponent(main.dataset.panel) + "/tools/" +
    encodeURIComponent(tool);
  const headers = {"Content-Type": "application/json"};
  if (token) headers.Authorization = "Bearer " + token;
  let body = {};
  try {
    const r = await fetch(url, {method: "POST", headers, body: JSON.stringify(args)});
    body = await r.json();
  } catch (e) { show("The gateway did not answer.", true); return; }
  if (!body.ok) { show((body.error && body.error.message) || "The tool failed.", true); return; }
  const toasts = (body.effects || []).filter(e => e.kind === "emit" && e.event === "toast");
  const text = toasts.map(e => typeof e.payload === "string" ? e.payload
    : JSON.stringify(e.payload)).concat((body.flows || []).map(f => f.message))
    .join(" · ");
  sessionStorage.setItem("nexflow-panel-toast", text || tool + ": done");
  location.reload();
}
document.addEventListener("click", (ev) => {
  const el = ev.target.closest("[data-tool]");
  if (!el || el.tagName === "FORM") return;
  if (el.dataset.confirm && !confirm(el.dataset.confirm)) return;
  run(el.dataset.tool, JSON.parse(el.dataset.args || "{}"));
});
document.addEventListener("submit", (ev) => {
  const form = ev.target.closest("form[data-tool]");
  if (!form) return;
  ev.preventDefault();
  const args = JSON.parse(form.dataset.args || "{}");
  args[form.dataset.arg] = form.elements.value.value;
  run(form.dataset.tool, args);
});
"""


def preview_page(tree: RenderTree, panel_id: str, binding_errors: tuple[str, ...] = ()) -> str:
    errors = "".join(f"<li>{escape(e)}</li>" for e in binding_errors)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{escape(tree.title)} · Nexflow</title><style>{_CSS}</style></head><body>"
        f'<main data-panel="{escape(panel_id)}"><h1>{escape(tree.title)}</h1>'
        '<div id="toast" role="status"></div>'
        + (f'<ul class="muted">{errors}</ul>' if errors else "")
        + _node(tree.root)
        + f"</main><script>{_JS}</script></body></html>"
    )


def _e(value: object) -> str:
    return escape(js_string(value))


def _trigger_attrs(node: RenderNode, extra: dict[str, JsonValue] | None = None) -> str:
    if node.trigger is None:
        return ""
    args = {**node.trigger.args, **(extra or {})}
    return f' data-tool="{escape(node.trigger.tool)}" data-args="{escape(json.dumps(args))}"'


def _node(node: RenderNode) -> str:
    if node.kind == "row":
        cells = "".join(
            f'<div style="grid-column:span {int(c.span)}">{_node(c)}</div>' for c in node.children
        )
        return f'<div class="row">{cells}</div>'
    if node.kind == "layout":
        title = node.props.get("title")
        head = f"<h2>{_e(title)}</h2>" if title else ""
        inner = "".join(_node(c) for c in node.children)
        return f'<section data-key="{escape(node.key)}">{head}{inner}</section>'
    render = _COMPONENTS.get(node.type)
    body = render(node) if render is not None else f"<div>{escape(node.type)}</div>"
    return f'<div class="c-{escape(node.type)}" data-key="{escape(node.key)}">{body}</div>'


def _metric(n: RenderNode) -> str:
    trend = fmt.TREND_MARK.get(str(n.props.get("trend")), "")
    return (
        f'<div class="metric"><span class="label">{_e(n.props.get("label"))}</span>'
        f'<span class="value">{_e(n.props.get("value"))}{_e(n.props.get("unit"))}</span>'
        f'<span class="trend">{trend}</span></div>'
    )


def _badge(n: RenderNode) -> str:
    tone = fmt.tone_of(n.props.get("value"), n.props.get("tone"))
    return (
        f'<span class="badge-label">{_e(n.props.get("label"))}</span>'
        f'<span class="badge tone-{tone}">{_e(n.props.get("value"))}</span>'
    )


def _action(n: RenderNode) -> str:
    variant = escape(js_string(n.props.get("variant") or "default"))
    confirm = n.props.get("confirm")
    attrs = _trigger_attrs(n) + (f' data-confirm="{_e(confirm)}"' if confirm else "")
    disabled = " disabled" if n.props.get("disabled") else ""
    return f'<button class="{variant}"{attrs}{disabled}>{_e(n.props.get("label"))}</button>'


def _logs(n: RenderNode) -> str:
    flt = n.props.get("filter")
    lines = fmt.filter_lines(n.props.get("data"), flt)
    limit = n.props.get("max_lines")
    if isinstance(limit, int) and limit > 0:
        lines = lines[-limit:]
    head = f'<div class="muted">filter: {_e(flt)}</div>' if flt else ""
    body = "\n".join(escape(fmt.line_text(line)) for line in lines) or "(no lines)"
    height = n.props.get("height")
    style = f' style="max-height:{int(height)}px"' if isinstance(height, int) else ""
    return f'{head}<pre class="logs" data-filter="{_e(flt)}"{style}>{body}</pre>'


def _text(n: RenderNode) -> str:
    return f'<p class="{_e(n.props.get("tone"))}">{_e(n.props.get("text"))}</p>'


def _table(n: RenderNode) -> str:
    cols, rows = fmt.table(n.props.get("data"), n.props.get("columns"))
    head = "".join(f"<th>{escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _list(n: RenderNode) -> str:
    items = n.props.get("items")
    check = n.props.get("check_key")
    arg = js_string(n.props.get("arg") or "index")
    out = []
    for i, item in enumerate(items if isinstance(items, list) else []):
        mark = ""
        if isinstance(check, str) and isinstance(item, dict):
            mark = "☑ " if item.get(check) else "☐ "
        label = escape(mark + fmt.item_label(item, n.props.get("label_key")))
        attrs = _trigger_attrs(n, {arg: i})
        out.append(f'<li><a href="#"{attrs}>{label}</a></li>' if attrs else f"<li>{label}</li>")
    tag = "ol" if n.props.get("ordered") else "ul"
    return f"<{tag}>{''.join(out)}</{tag}>"


def _input(n: RenderNode) -> str:
    if n.trigger is None:
        return f'<input value="{_e(n.props.get("value"))}" disabled>'
    return (
        f'<form{_trigger_attrs(n)} data-arg="{_e(n.props.get("arg") or "value")}">'
        f"<label>{_e(n.props.get('label'))} "
        f'<input name="value" value="{_e(n.props.get("value"))}" '
        f'placeholder="{_e(n.props.get("placeholder"))}"></label></form>'
    )


def _toggle(n: RenderNode) -> str:
    on = bool(n.props.get("value"))
    arg = js_string(n.props.get("arg") or "value")
    attrs = _trigger_attrs(n, {arg: not on})
    return f"<button{attrs}>{_e(n.props.get('label'))}: {'on' if on else 'off'}</button>"


def _chart(n: RenderNode) -> str:
    values = fmt.series(n.props.get("data"), n.props.get("y"))
    raw_height = n.props.get("height")
    height = raw_height if isinstance(raw_height, int) else 240
    title = f'<div class="muted">{_e(n.props.get("title"))}</div>' if n.props.get("title") else ""
    if not values:
        return f"{title}<div class='muted'>no data</div>"
    low, high = min(0.0, *values), max(values) or 1.0
    span = (high - low) or 1.0
    w = 100 / len(values)
    if n.props.get("kind") == "bar":
        shapes = "".join(
            f'<rect x="{i * w + w * 0.1:.2f}" y="{100 - (v - low) / span * 100:.2f}" '
            f'width="{w * 0.8:.2f}" height="{(v - low) / span * 100:.2f}" fill="#2463eb"/>'
            for i, v in enumerate(values)
        )
    else:
        points = " ".join(
            f"{i * w + w / 2:.2f},{100 - (v - low) / span * 100:.2f}" for i, v in enumerate(values)
        )
        shapes = f'<polyline points="{points}" fill="none" stroke="#2463eb" stroke-width="1.5"/>'
    return (
        f'{title}<svg viewBox="0 0 100 100" preserveAspectRatio="none" '
        f'style="height:{height}px">{shapes}</svg>'
    )


def _diagram(n: RenderNode) -> str:
    nodes = n.props.get("nodes")
    edges = n.props.get("edges")
    arg = js_string(n.props.get("arg") or "id")
    items = []
    for x in nodes if isinstance(nodes, list) else []:
        if isinstance(x, dict):
            attrs = _trigger_attrs(n, {arg: x.get("id")})
            label = _e(x.get("label", x.get("id")))
            items.append(
                f'<li><a href="#"{attrs}>{label}</a></li>' if attrs else f"<li>{label}</li>"
            )
    arrows = "\n".join(
        f"{js_string(e.get('from'))} → {js_string(e.get('to'))}"
        + (f"  ({js_string(e.get('label'))})" if e.get("label") else "")
        for e in (edges if isinstance(edges, list) else [])
        if isinstance(e, dict)
    )
    return f"<ul>{''.join(items)}</ul><pre>{escape(arrows)}</pre>"


_COMPONENTS: dict[str, Callable[[RenderNode], str]] = {
    "Metric": _metric,
    "StatusBadge": _badge,
    "Action": _action,
    "LogStream": _logs,
    "Text": _text,
    "Markdown": lambda n: f'<div class="markdown">{_e(n.props.get("content"))}</div>',
    "Table": _table,
    "List": _list,
    "Input": _input,
    "Toggle": _toggle,
    "Chart": _chart,
    "Code": lambda n: f"<pre><code>{_e(n.props.get('code'))}</code></pre>",
    "Diagram": _diagram,
}
