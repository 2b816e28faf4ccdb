"""Each diagnostic with its position. Lines follow ``panel_xml``: Data content on
line 3, Logic content on line 6, View content on line 9."""

from __future__ import annotations

import pytest
from nxml_helpers import panel_xml

from nexflow.panels import Diagnostic, NXMLValidationError, binding_sites, load, parse, validate

N = '<State name="n" type="number" />'
TOOL = '<Tool name="restart_node" description="d"><Handler>x()</Handler></Tool>'


def only(xml: str, code: str) -> Diagnostic:
    found = [d for d in validate(parse(xml)) if d.code == code]
    assert len(found) == 1, validate(parse(xml))
    return found[0]


def at(d: Diagnostic) -> tuple[int, int]:
    return d.line, d.column


def test_unknown_component_suggests_closest() -> None:
    d = only(panel_xml(view='<Metrc label="a" value="{$state.n}" />', data=N), "unknown-component")
    assert (at(d), d.severity) == ((9, 1), "error")
    assert d.hint == "did you mean <Metric>?"
    d = only(panel_xml(view="<Spaceship />"), "unknown-component")
    assert "known components: Layout, Metric" in d.hint


def test_unknown_prop_suggests_closest() -> None:
    d = only(panel_xml(view='<Metric label="a" valeu="1" value="{$state.n}" />', data=N),
             "unknown-prop")  # fmt: skip
    assert at(d) == (9, 19)
    assert d.hint == 'did you mean value="..."?'


def test_unknown_state_in_binding() -> None:
    data = '<State name="cpu_load" type="number" />'
    d = only(panel_xml(view='<Metric label="a" value="{$state.cpu * 2}%" />', data=data),
             "unknown-state")  # fmt: skip
    assert (at(d), d.severity) == ((9, 19), "error")
    assert d.hint == "did you mean {$state.cpu_load}?"
    d = only(panel_xml(view="<Metric label=\"a\" value=\"{$state['zzz']}\" />", data=data),
             "unknown-state")  # fmt: skip
    assert '<State name="zzz"' in d.hint


def test_action_with_unknown_tool() -> None:
    d = only(panel_xml(view='<Action label="Go" trigger="restart" />', logic=TOOL),
             "unknown-tool")  # fmt: skip
    assert at(d) == (9, 20)
    assert d.hint == 'did you mean trigger="restart_node"?'


@pytest.mark.parametrize(
    ("state", "hint"),
    [
        ('<State name="n" type="number" default="abc" />', 'default="0"'),
        ('<State name="n" type="boolean" default="yes" />', '"true" or "false"'),
        ('<State name="n" type="list" default="{}" />', "JSON like"),
        ('<State name="n" type="object" default="[1]" />', "JSON like"),
        ('<State name="n" type="number" default="NaN" />', 'default="0"'),
    ],
)
def test_default_must_match_type(state: str, hint: str) -> None:
    d = only(panel_xml(data=state), "bad-default")
    assert at(d) == (3, 1)
    assert hint in d.hint


def test_arg_default_must_match_type() -> None:
    logic = ('<Tool name="t" description="d"><Arg name="a" type="number" default="x" />'
             "<Handler>x()</Handler></Tool>")  # fmt: skip
    assert at(only(panel_xml(logic=logic), "bad-default")) == (6, 32)


def test_duplicates() -> None:
    d = only(panel_xml(data=N + N), "duplicate-state")
    assert at(d) == (3, 33)
    d = only(panel_xml(logic=TOOL + TOOL), "duplicate-tool")
    assert at(d) == (6, len(TOOL) + 1)
    args = '<Arg name="a" type="string" /><Arg name="a" type="number" />'
    d = only(panel_xml(logic=f'<Tool name="t" description="d">{args}<Handler>x()</Handler></Tool>'),
             "duplicate-arg")  # fmt: skip
    assert at(d) == (6, 62)


@pytest.mark.parametrize(
    ("kwargs", "where", "hint"),
    [
        ({"view": '<State name="x" type="number" />'}, (9, 1), "move it into <Data>"),
        ({"view": "<Tool name='x' />"}, (9, 1), "move it into <Logic>"),
        ({"logic": '<Metric label="a" value="1" />'}, (6, 1), "move it into <View>"),
        ({"data": "<Tool name='x' />"}, (3, 1), "move it into <Logic>"),
        ({"data": "<Handler>x</Handler>"}, (3, 1), "a <Tool> in <Logic>"),
        ({"extra": '<State name="x" type="number" />\n'}, (11, 1), "move it into <Data>"),
        ({"view": '<Arg name="x" value="1" />'}, (9, 1), "trigger"),
    ],
)
def test_wrong_namespace(kwargs: dict[str, str], where: tuple[int, int], hint: str) -> None:
    d = only(panel_xml(**kwargs), "wrong-namespace")
    assert at(d) == where
    assert hint in d.hint


def test_unknown_element_in_data() -> None:
    d = only(panel_xml(data="<Stat name='x' />"), "unknown-element")
    assert at(d) == (3, 1)
    assert "<State>" in d.hint


def test_missing_required_props() -> None:
    d = only(panel_xml(view='<Metric value="{$state.n}" />', data=N), "missing-prop")
    assert (at(d), d.message) == ((9, 1), "<Metric> needs label")
    d = only(panel_xml(view='<Action label="Go" />'), "missing-prop")
    assert d.message == "<Action> needs trigger"
    d = only(panel_xml(view="<Markdown />"), "missing-prop")
    assert "element text" in d.hint


@pytest.mark.parametrize(
    ("value", "column", "message"),
    [
        ("{$state.n", 26, "never closed"),
        ("x}", 27, "without a matching"),
        ("a { } b", 28, "empty binding"),
        ("{'}", 26, "unterminated string"),
    ],
)
def test_binding_braces(value: str, column: int, message: str) -> None:
    d = only(panel_xml(view=f'<Metric label="a" value="{value}" />', data=N), "binding-syntax")
    assert at(d) == (9, column)
    assert message in d.message


def test_nested_braces_and_strings_inside_bindings_are_fine() -> None:
    view = "<Metric label=\"a\" value=\"{ {a: 1}['a'] + '}' + $state.n }\" />"
    assert validate(parse(panel_xml(view=view, data=N))) == []


def test_values_of_literal_props() -> None:
    d = only(panel_xml(view='<Layout strategy="grids"><Text>x</Text></Layout>'), "bad-value")
    assert (at(d), d.hint) == ((9, 9), "use one of: auto, row, column, grid")
    d = only(panel_xml(view='<LogStream data="{$state.n}" height="tall" />', data=N), "bad-value")
    assert at(d) == (9, 30)
    d = only(panel_xml(view='<Layout strategy="{$state.n}"><Text>x</Text></Layout>', data=N),
             "not-bindable")  # fmt: skip
    assert at(d) == (9, 9)


def test_trigger_arguments() -> None:
    logic = ('<Tool name="f" description="d"><Arg name="level" type="string" required="true" />'
             '<Arg name="n" type="number" /><Handler>x()</Handler></Tool>')  # fmt: skip
    d = only(panel_xml(view='<Action label="a" trigger="f" />', logic=logic), "missing-arg")
    assert at(d) == (9, 19)
    assert '<Arg name="level"' in d.hint
    view = '<Action label="a" trigger="f"><Arg name="levl" value="x" /></Action>'
    d = only(panel_xml(view=view, logic=logic), "unknown-arg")
    assert (at(d), d.hint) == ((9, 31), 'did you mean name="level"?')
    view = ('<Action label="a" trigger="f"><Arg name="level" value="x" />'
            '<Arg name="n" value="many" /></Action>')  # fmt: skip
    assert at(only(panel_xml(view=view, logic=logic), "bad-value")) == (9, 61)
    view = '<Input trigger="f" arg="level" />'
    assert validate(parse(panel_xml(view=view, logic=logic))) == []


def test_trigger_and_children_only_where_allowed() -> None:
    view = '<Metric label="a" value="{$state.n}" trigger="restart_node" />'
    d = only(panel_xml(view=view, data=N, logic=TOOL), "trigger-not-allowed")
    assert at(d) == (9, 38)
    view = '<Metric label="a" value="{$state.n}"><Text>x</Text></Metric>'
    assert at(only(panel_xml(view=view, data=N), "no-children")) == (9, 38)


def test_tools() -> None:
    d = only(panel_xml(logic='<Tool name="t" description="d" />'), "missing-handler")
    assert at(d) == (6, 1)
    d = only(panel_xml(logic='<Tool name="t"><Handler>x()</Handler></Tool>'),
             "missing-description")  # fmt: skip
    assert d.severity == "warning"
    logic = '<Tool name="t" description="d"><Handler>\n  $state.n = $state.m;</Handler></Tool>'
    d = only(panel_xml(logic=logic, data=N), "unknown-state")
    assert (at(d), d.severity) == ((7, 14), "warning")


def test_bad_types_names_and_attributes() -> None:
    d = only(panel_xml(data='<State name="n" type="numbr" />'), "bad-type")
    assert (at(d), d.hint) == ((3, 17), 'write type="number"')
    d = only(panel_xml(data='<State type="number" />'), "missing-attribute")
    assert at(d) == (3, 1)
    d = only(panel_xml(data='<State name="n" type="number" defualt="1" />'), "unknown-attribute")
    assert (at(d), d.hint) == ((3, 31), 'did you mean default="..."?')
    d = only(panel_xml(data='<State name="my state" type="number" />'), "bad-name")
    assert at(d) == (3, 8)


def test_panel_attributes_and_capabilities() -> None:
    assert only('<NexusPanel id="Bad Id" title="x" />', "bad-id").column == 13
    caps = ('<Capabilities><Http host="https://x.com/a" /><File path="../etc" />'
            '<File path="notes/" mode="write" /><Clock /></Capabilities>')  # fmt: skip
    panel = parse(panel_xml(extra=caps))
    bad = [at(d) for d in validate(panel) if d.code == "bad-value"]
    assert bad == [(11, 21), (11, 52)]
    assert [(c.kind, c.target, c.mode) for c in panel.capabilities] == [
        ("http", "https://x.com/a", None),
        ("file", "../etc", "read"),
        ("file", "notes/", "write"),
        ("clock", "", None),
    ]


def test_load_raises_with_every_diagnostic(server_monitor_xml: str) -> None:
    panel, warnings = load(server_monitor_xml)
    assert panel.id == "server-monitor" and warnings == []
    with pytest.raises(NXMLValidationError) as info:
        load(panel_xml(view='<Metrc label="a" />'))
    assert [d.code for d in info.value.diagnostics] == ["unknown-component"]


def test_binding_sites_helper(server_monitor_xml: str) -> None:
    sites = binding_sites(parse(server_monitor_xml))
    assert [tuple(s) for s in sites] == [
        ("view/0/0", "value", "$state.cpu_load"),
        ("view/0/0", "trend", "$state.cpu_load > 80 ? 'down' : 'up'"),
        ("view/0/1", "value", "$state.status"),
        ("view/0/3", "data", "$state.logs"),
    ]
    view = '<Action label="x" trigger="t"><Arg name="a" value="{$state.n}" /></Action>'
    assert [tuple(s) for s in binding_sites(parse(panel_xml(view=view)))] == [
        ("view/0", "args.a", "$state.n")
    ]


def test_diagnostics_are_sorted_and_printable() -> None:
    found = validate(parse(panel_xml(view="<A />\n<B />", data="<Stat />")))
    assert [(d.line, d.column) for d in found] == sorted((d.line, d.column) for d in found)
    assert str(found[0]).startswith("3:1: error[unknown-element]")
