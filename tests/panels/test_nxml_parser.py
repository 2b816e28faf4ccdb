from __future__ import annotations

import time
from pathlib import Path

import pytest

from nexflow.panels import (
    NXMLLimitError,
    NXMLSyntaxError,
    PanelError,
    ParseLimits,
    parse,
    validate,
)
from nexflow.panels.ast import ExprPart, TextPart

SEEDS = Path(__file__).resolve().parents[2].parent / "shared" / "seeds"  # CI clones shared/ beside


def test_server_monitor_file_is_the_seed_verbatim(server_monitor_xml: str) -> None:
    seeds = sorted(SEEDS.glob("000_*.txt"))
    assert seeds, f"the seed documents are expected in {SEEDS}"
    seed = seeds[0].read_text(encoding="utf-8")
    start = seed.index("<NexusPanel")
    end = seed.index("</NexusPanel>") + len("</NexusPanel>")
    assert server_monitor_xml == seed[start:end] + "\n"


def test_server_monitor_parses_and_validates(server_monitor_xml: str) -> None:
    panel = parse(server_monitor_xml)
    assert (panel.id, panel.title) == ("server-monitor", "Cluster Health")
    assert [(s.name, s.type, s.default) for s in panel.data.states] == [
        ("cpu_load", "number", 0),
        ("status", "string", "idle"),
        ("logs", "list", []),
    ]
    restart = panel.tool("restart_node")
    assert restart is not None and restart.handler is not None
    assert [(a.name, a.type, a.required) for a in restart.args] == [("force", "boolean", False)]
    assert '$state.status = "rebooting";' in restart.handler.source
    assert (restart.handler.line, restart.handler.column) == (23, 16)
    assert validate(panel) == []


def test_positions_and_bindings(server_monitor_xml: str) -> None:
    panel = parse(server_monitor_xml)
    layout = panel.view.children[0]
    metric, badge, action, logs = layout.children
    assert (metric.type, metric.path, metric.line, metric.column) == ("Metric", "view/0/0", 55, 7)
    value = metric.props["value"]
    assert (value.line, value.column) == (55, 27)
    assert value.parts == (
        ExprPart(expr="$state.cpu_load", refs=("cpu_load",)),
        TextPart(text="%"),
    )
    assert metric.props["trend"].is_whole_binding
    assert action.trigger is not None and action.trigger.tool == "restart_node"
    assert "trigger" not in action.props
    assert logs.props["height"].parts == (TextPart(text="200"),)
    assert badge.props["value"].refs == ("status",)


def test_ast_round_trips_through_json(server_monitor_xml: str) -> None:
    panel = parse(server_monitor_xml)
    again = type(panel).model_validate_json(panel.model_dump_json())
    assert again == panel


def test_cdata_handler_keeps_javascript_verbatim() -> None:
    xml = (
        '<NexusPanel id="x" title="X"><Data><State name="n" type="number"/></Data>'
        '<Logic><Tool name="t" description="d"><Handler><![CDATA[if ($state.n < 3 && 1) '
        '$state.n++;]]></Handler></Tool></Logic><View><Metric label="n" value="{$state.n}"/>'
        "</View></NexusPanel>"
    )
    panel = parse(xml)
    tool = panel.tool("t")
    assert tool is not None and tool.handler is not None
    assert tool.handler.source == "if ($state.n < 3 && 1) $state.n++;"
    assert validate(panel) == []


def test_literal_braces_and_body_text() -> None:
    xml = (
        '<NexusPanel id="x" title="X"><View>'
        '<Text>Set {{a}}: {$state.a}</Text><Code language="js">function f() { return 1; }</Code>'
        '</View><Data><State name="a" type="string"/></Data></NexusPanel>'
    )
    panel = parse(xml)
    text, code = panel.view.children
    assert text.props["text"].parts == (
        TextPart(text="Set {a}: "),
        ExprPart(expr="$state.a", refs=("a",)),
    )
    assert code.props["code"].parts == (TextPart(text="function f() { return 1; }"),)
    assert validate(panel) == []


@pytest.mark.parametrize(
    ("xml", "line", "column", "hint"),
    [
        ("<NexusPanel id='x' title='X'>\n<View>\n</Veiw></NexusPanel>", 3, 3, "close every"),
        ("<NexusPanel id='x' title='X'><Data></Data>", 1, 43, "ends early"),
        ("<NexusPanel id='x' title='X'/><More/>", 1, 31, "one root"),
        ("<NexusPanel id='x' title='&nbsp;'/>", 1, 1, "only &lt;"),
        ("<NexusPanel id='x'>\n<Logic><Tool name='t'><Handler>if (a < b) x();</Handler>"
         "</Tool></Logic></NexusPanel>", 2, 38, "CDATA"),
        ("<NexusPanel id='x'>\n  <View><Metric label='a' value='{1 < 2}'/></View></NexusPanel>",
         2, 37, "&lt;"),
    ],
)  # fmt: skip
def test_syntax_errors_have_positions_and_hints(
    xml: str, line: int, column: int, hint: str
) -> None:
    with pytest.raises(NXMLSyntaxError) as info:
        parse(xml)
    d = info.value.first
    assert (d.line, d.column) == (line, column), d
    assert hint in d.hint
    assert d.severity == "error"


def test_wrong_root() -> None:
    with pytest.raises(NXMLSyntaxError) as info:
        parse("<Panel id='x'/>")
    assert info.value.first.code == "wrong-root"
    assert "<NexusPanel" in info.value.first.hint


def _quick(xml: str, exc: type[PanelError] = NXMLLimitError, **limits: int) -> PanelError:
    start = time.perf_counter()
    with pytest.raises(exc) as info:
        parse(xml, limits=ParseLimits(**limits) if limits else None)
    assert time.perf_counter() - start < 0.5
    return info.value


def test_billion_laughs_is_refused() -> None:
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    xml = f"<?xml version='1.0'?><!DOCTYPE lolz [{entities}]><NexusPanel>&lol9;</NexusPanel>"
    err = _quick(xml)
    assert err.first.code == "dtd-forbidden"


def test_external_entity_and_dtd_are_refused() -> None:
    xxe = (
        '<!DOCTYPE p [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><NexusPanel id="x" title="&xxe;"/>'
    )
    assert _quick(xxe).first.code == "dtd-forbidden"
    dtd = '<!DOCTYPE NexusPanel SYSTEM "http://example.com/x.dtd"><NexusPanel id="x"/>'
    assert _quick(dtd).first.code == "dtd-forbidden"
    param = '<!DOCTYPE p [<!ENTITY % e SYSTEM "http://example.com/e">%e;]><NexusPanel/>'
    assert _quick(param).first.code == "dtd-forbidden"


def test_deep_nesting_is_refused() -> None:
    depth = 10_000
    xml = (
        "<NexusPanel id='x'><View>"
        + "<Layout>" * depth
        + "</Layout>" * depth
        + "</View></NexusPanel>"
    )
    err = _quick(xml)
    assert err.first.code == "too-deep"
    assert err.first.line == 1


def test_huge_document_is_refused_before_parsing() -> None:
    xml = "<NexusPanel id='x'>" + " " * (10 * 1024 * 1024) + "</NexusPanel>"
    assert _quick(xml).first.code == "too-large"


def test_too_many_elements_and_custom_limits() -> None:
    xml = "<NexusPanel id='x'><View>" + "<Text>a</Text>" * 50 + "</View></NexusPanel>"
    assert _quick(xml, max_elements=20).first.code == "too-many-elements"
    assert parse(xml, limits=ParseLimits(max_elements=100)).view.children
    assert _quick(xml, max_bytes=100).first.code == "too-large"
    many = "<NexusPanel " + " ".join(f"a{i}='1'" for i in range(10)) + "/>"
    assert _quick(many, max_attributes=5).first.code == "too-many-attributes"


def test_lone_surrogate_is_a_syntax_error() -> None:
    _quick("<NexusPanel id='\ud800'/>", NXMLSyntaxError)


def test_unicode_columns_count_characters() -> None:
    xml = "<NexusPanel id='x' title='Сервер'><View><Metrc label='ЦП'/></View></NexusPanel>"
    (d,) = [d for d in validate(parse(xml)) if d.code == "unknown-component"]
    assert (d.line, d.column) == (1, 41)
