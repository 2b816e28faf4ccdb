from __future__ import annotations

from nxml_helpers import panel_xml

from nexflow.panels import LayoutEngine, LayoutOptions, RenderNode, RenderTree, parse

N = '<State name="n" type="number" /><State name="s" type="string" />'
M = '<Metric label="m" value="{$state.n}" />'
TOOL = '<Tool name="t" description="d"><Arg name="a" type="string" /><Handler>x()</Handler></Tool>'


def lay(view: str, options: LayoutOptions | None = None) -> RenderTree:
    return LayoutEngine(options=options).layout(parse(panel_xml(view=view, data=N, logic=TOOL)))


def shape(node: RenderNode) -> object:
    if node.kind == "component":
        return (node.type, node.span)
    return [shape(c) for c in node.children]


def codes(tree: RenderTree) -> list[str]:
    return [w.code for w in tree.warnings]


def test_server_monitor_auto_layout(server_monitor_xml: str) -> None:
    tree = LayoutEngine().layout(parse(server_monitor_xml))
    assert tree.warnings == ()
    assert shape(tree.root) == [
        [[[("Metric", 6), ("StatusBadge", 6)], [("Action", 3)], [("LogStream", 12)]]]
    ]
    layout = tree.find("view/0")
    assert layout is not None and layout.props == {"strategy": "auto", "gap": 12}
    action = tree.find("view/0/2")
    assert action is not None and action.trigger is not None
    assert action.trigger.tool == "restart_node"
    assert action.props == {"label": "Emergency Restart", "variant": "danger", "disabled": False}
    logs = tree.find("view/0/3")
    assert logs is not None and logs.props["height"] == 200
    assert tree.expressions() == (
        "$state.cpu_load",
        "$state.cpu_load > 80 ? 'down' : 'up'",
        "$state.status",
        "$state.logs",
    )


def test_auto_caps_rows_and_widths() -> None:
    tree = lay(M * 6 + '<Table data="{$state.n}" />' + M)
    assert shape(tree.root) == [
        [("Metric", 3)] * 4,
        [("Metric", 6)] * 2,
        [("Table", 12)],
        [("Metric", 6)],
    ]
    assert shape(lay(M * 3, LayoutOptions(max_per_row=2)).root) == [
        [("Metric", 6)] * 2,
        [("Metric", 6)],
    ]


def test_grid_row_and_column() -> None:
    grid = lay(f'<Layout strategy="grid" columns="3">{M * 4}</Layout>')
    assert shape(grid.root) == [[[[("Metric", 4)] * 3, [("Metric", 4)]]]]
    capped = lay(f'<Layout strategy="grid" columns="8">{M * 2}</Layout>')
    assert codes(capped) == ["layout-capped"]
    assert shape(capped.root) == [[[[("Metric", 3)] * 2]]]
    column = lay(f'<Layout strategy="column">{M * 2}</Layout>')
    assert shape(column.root) == [[[[("Metric", 12)], [("Metric", 12)]]]]
    row = lay(f'<Layout strategy="row">{M * 5}</Layout>')
    assert codes(row) == ["layout-wrapped"]
    assert shape(row.root) == [[[[("Metric", 3)] * 4, [("Metric", 12)]]]]
    squeezed = lay(f'<Layout strategy="row">{M}<LogStream data="{{$state.n}}" /></Layout>')
    assert codes(squeezed) == ["layout-squeezed"]
    ignored = lay(f'<Layout strategy="row" columns="2">{M}</Layout>')
    assert codes(ignored) == ["layout-ignored-prop"]


def test_warnings_for_views_that_cannot_look_right() -> None:
    empty = lay('<Layout strategy="auto" />')
    assert codes(empty) == ["layout-empty"]
    assert (empty.warnings[0].line, empty.warnings[0].column) == (9, 1)
    assert codes(lay("")) == ["layout-empty"]
    actions = lay('<Action label="a" trigger="t" />' * 7)
    assert codes(actions) == ["layout-too-many-actions"]
    assert actions.warnings[0].column == 1 + 6 * len('<Action label="a" trigger="t" />')
    unbound = lay('<Metric label="m" value="42" />')
    assert codes(unbound) == ["layout-unbound"]
    assert unbound.warnings[0].column == 19
    deep = lay("<Layout>" * 4 + M + "</Layout>" * 4)
    assert codes(deep) == ["layout-too-deep"]


def test_with_values_fills_bindings_and_keeps_them() -> None:
    view = (
        '<Metric label="{$state.s}" value="{$state.n}" unit="%" />'
        '<Metric label="x" value="{$state.n} of {$state.n * 2}" />'
        '<Action label="go" trigger="t"><Arg name="a" value="{$state.s}" /></Action>'
    )
    tree = lay(view)
    assert tree.expressions() == ("$state.s", "$state.n", "$state.n * 2")
    values = {"$state.s": "cpu", "$state.n": 2.0, "$state.n * 2": 4}
    done = tree.with_values(values)
    first, second, action = (done.find(f"view/{i}") for i in range(3))
    assert first is not None and first.props == {"label": "cpu", "value": 2.0, "unit": "%"}
    assert second is not None and second.props["value"] == "2 of 4"
    assert action is not None and action.trigger is not None
    assert action.trigger.args == {"a": "cpu"}
    assert done.unresolved == []
    assert first.bindings == tree.find("view/0").bindings  # type: ignore[union-attr]
    again = done.with_values({"$state.s": "mem"})
    node = again.find("view/0")
    assert node is not None and node.props["label"] == "mem" and node.props["value"] is None
    assert again.unresolved == [("view/0", "value"), ("view/1", "value")]
    untouched = tree.find("view/0")
    assert untouched is not None and "label" not in untouched.props


def test_literal_props_are_typed_and_defaults_filled() -> None:
    tree = lay(
        '<Chart data="{$state.n}" height="99" kind="bar" />'
        '<Action label="a" trigger="t" disabled="true"><Arg name="a" value="x" /></Action>'
    )
    chart, action = tree.find("view/0"), tree.find("view/1")
    assert chart is not None and chart.props == {"kind": "bar", "height": 99}
    assert action is not None and action.props["disabled"] is True
    assert action.trigger is not None and action.trigger.args == {"a": "x"}


def test_render_tree_json_round_trip(server_monitor_xml: str) -> None:
    tree = LayoutEngine().layout(parse(server_monitor_xml)).with_values({"$state.logs": []})
    assert RenderTree.model_validate_json(tree.model_dump_json()) == tree
