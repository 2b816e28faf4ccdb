from __future__ import annotations

import math

import pytest

from nexflow.panels import NexusPanel, parse
from nexflow.panels.runtime import ArgsInvalid, PanelInvalid, StateRejected
from nexflow.panels.runtime.state import (
    args_schema,
    check_args,
    check_state,
    initial_state,
    load_panel,
)

XML = """<NexusPanel id="p" title="P">
  <Data>
    <State name="n" type="number" default="1" />
    <State name="s" type="string" />
    <State name="b" type="boolean" default="true" />
    <State name="l" type="list" default="[1]" />
    <State name="o" type="object" />
  </Data>
  <Logic>
    <Tool name="t" description="d">
      <Arg name="level" type="string" required="true" description="Which level" />
      <Arg name="force" type="boolean" default="false" />
      <Handler>$state.n = 2;</Handler>
    </Tool>
  </Logic>
  <View><Metric label="N" value="{$state.n}" /></View>
</NexusPanel>"""


@pytest.fixture
def panel() -> NexusPanel:
    return parse(XML)


def test_initial_state_uses_defaults_and_zero_values(panel: NexusPanel) -> None:
    assert initial_state(panel) == {"n": 1, "s": "", "b": True, "l": [1], "o": {}}


def test_valid_state_passes(panel: NexusPanel) -> None:
    check_state(panel, {"n": 2.5, "s": "x", "b": False, "l": [], "o": {"a": 1}})


@pytest.mark.parametrize(
    ("state", "needle"),
    [
        (
            {"n": 1, "s": "", "b": True, "l": [], "o": {}, "extra": 1},
            "$state.extra is not declared",
        ),
        ({"n": 1, "s": "", "b": True, "l": []}, "$state.o was deleted"),
        ({"n": "1", "s": "", "b": True, "l": [], "o": {}}, "$state.n must be a number"),
        ({"n": True, "s": "", "b": True, "l": [], "o": {}}, "set a boolean"),
        ({"n": math.nan, "s": "", "b": True, "l": [], "o": {}}, "$state.n must be a number"),
        ({"n": 1, "s": None, "b": True, "l": [], "o": {}}, "$state.s must be a string"),
        ({"n": 1, "s": "", "b": 1, "l": [], "o": {}}, "$state.b must be a boolean"),
        ({"n": 1, "s": "", "b": True, "l": {}, "o": {}}, "$state.l must be a list"),
        ({"n": 1, "s": "", "b": True, "l": [], "o": []}, "$state.o must be a object"),
    ],
)
def test_bad_state_is_rejected(panel: NexusPanel, state: dict[str, object], needle: str) -> None:
    with pytest.raises(StateRejected) as info:
        check_state(panel, state)
    assert needle in info.value.message
    assert "nothing was applied" in info.value.message


def test_args_are_checked_and_defaulted(panel: NexusPanel) -> None:
    tool = panel.tool("t")
    assert check_args(tool, {"level": "error"}) == {"level": "error", "force": False}
    with pytest.raises(ArgsInvalid, match="missing required argument 'level'"):
        check_args(tool, {})
    with pytest.raises(ArgsInvalid, match="unknown argument 'keyword'"):
        check_args(tool, {"level": "x", "keyword": "error"})
    with pytest.raises(ArgsInvalid, match="'force' must be a boolean, not a string"):
        check_args(tool, {"level": "x", "force": "yes"})


def test_args_schema_is_provider_json_schema(panel: NexusPanel) -> None:
    schema = args_schema(panel.tool("t"))
    assert schema == {
        "type": "object",
        "properties": {
            "level": {"type": "string", "description": "Which level"},
            "force": {"type": "boolean", "default": False},
        },
        "additionalProperties": False,
        "required": ["level"],
    }


def test_load_panel_wraps_diagnostics() -> None:
    with pytest.raises(PanelInvalid) as info:
        load_panel("<NexusPanel id='x' title='x'><View><Metric label='a'/></View></NexusPanel>")
    first = info.value.diagnostics[0]
    assert (first.line, first.code) == (1, "missing-prop")
