"""The parser may reject anything, but only with its own error type; whatever it
accepts must validate and lay out without raising."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nexflow.panels import LayoutEngine, PanelError, parse, validate

SEED = (Path(__file__).resolve().parents[2] / "panels" / "server-monitor.nxml").read_text()
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TAGS = [
    "NexusPanel", "Data", "Logic", "View", "State", "Tool", "Arg", "Handler", "Capabilities",
    "Http", "File", "Clock", "Layout", "Metric", "StatusBadge", "Action", "LogStream", "Text",
    "Markdown", "Table", "List", "Input", "Toggle", "Chart", "Code", "Diagram", "Bogus", "x:y",
]  # fmt: skip
ATTRS = [
    "id", "title", "name", "type", "default", "value", "label", "trigger", "strategy",
    "columns", "data", "height", "host", "path", "mode", "required", "arg", "kind",
]  # fmt: skip
VALUES = st.one_of(
    st.sampled_from(["number", "list", "{$state.a}", "{", "}", "{}", "{{", "[]", "true",
                     "grid", "3", "-1", "{$state['b']}%", "{'}'}", "a", "../x", ""]),
    st.text(alphabet="{}$[]'\"`ab .<>&;", max_size=12),
)  # fmt: skip


def _quote(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


def _element(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    def build(tag: str, attrs: dict[str, str], kids: list[str], text: str) -> str:
        rendered = "".join(f' {k}="{_quote(v)}"' for k, v in attrs.items())
        return f"<{tag}{rendered}>{_quote(text)}{''.join(kids)}</{tag}>"

    return st.builds(
        build,
        st.sampled_from(TAGS),
        st.dictionaries(st.sampled_from(ATTRS), VALUES, max_size=4),
        st.lists(children, max_size=4),
        st.text(max_size=8),
    )


XMLISH = st.recursive(st.just("<Metric/>"), _element, max_leaves=25)


def _exercise(xml: str) -> None:
    try:
        panel = parse(xml)
    except PanelError as exc:
        assert exc.diagnostics and all(d.line >= 1 and d.column >= 1 for d in exc.diagnostics)
        return
    validate(panel)
    tree = LayoutEngine().layout(panel)
    tree.with_values(dict.fromkeys(tree.expressions(), 1))


@FUZZ
@given(st.text(max_size=300))
def test_random_text(text: str) -> None:
    _exercise(text)


@FUZZ
@given(XMLISH, st.dictionaries(st.sampled_from(["id", "title"]), VALUES, max_size=2))
def test_random_nxml_shaped_trees(body: str, attrs: dict[str, str]) -> None:
    rendered = "".join(f' {k}="{_quote(v)}"' for k, v in attrs.items())
    _exercise(f"<NexusPanel{rendered}>{body}</NexusPanel>")


MUTATION = st.tuples(
    st.sampled_from(["delete", "insert", "duplicate", "swap"]),
    st.integers(0, len(SEED)),
    st.integers(0, 40),
    st.text(alphabet="<>/&\"'{}$=;![]CDATA-x \n", max_size=6),
)


@FUZZ
@given(st.lists(MUTATION, min_size=1, max_size=4))
def test_mutations_of_the_seed(mutations: list[tuple[str, int, int, str]]) -> None:
    xml = SEED
    for op, where, length, text in mutations:
        at = min(where, len(xml))
        if op == "delete":
            xml = xml[:at] + xml[at + length :]
        elif op == "insert":
            xml = xml[:at] + text + xml[at:]
        elif op == "duplicate":
            xml = xml[:at] + xml[at : at + length] * 2 + xml[at + length :]
        else:
            xml = (
                xml[:at]
                + xml[at + length : at + 2 * length]
                + xml[at : at + length]
                + xml[at + 2 * length :]
            )
    _exercise(xml)
