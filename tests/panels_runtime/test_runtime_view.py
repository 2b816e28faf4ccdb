from __future__ import annotations

import re

import pytest

from nexflow.panels import LayoutEngine, RenderTree, parse
from nexflow.panels.runtime import ViewEffectRejected, provider_name, qualified_name
from nexflow.panels.runtime.viewstate import apply_view_effects, with_overrides
from nexflow.sandbox import EmitEffect, ViewEffect

XML = """<NexusPanel id="v" title="V">
  <Data><State name="logs" type="list" /><State name="other" type="list" /></Data>
  <View>
    <Metric label="Lines" value="{$state.logs.length}" />
    <LogStream data="{$state.logs}" />
    <LogStream id="audit" data="{$state.other}" height="100" />
  </View>
</NexusPanel>"""


@pytest.fixture
def tree() -> RenderTree:
    return LayoutEngine().layout(parse(XML))


def _key(tree: RenderTree, node_type: str, n: int = 0) -> str:
    return [x.key for x in tree.walk() if x.type == node_type][n]


def test_seed_form_targets_the_component_showing_the_state(tree: RenderTree) -> None:
    # $view.setFilter('logs', level): the Metric also reads logs but has no filter prop
    view = apply_view_effects(tree, {}, [ViewEffect("setFilter", ("logs", "error"))])
    assert view == {_key(tree, "LogStream"): {"filter": "error"}}


def test_component_forms(tree: RenderTree) -> None:
    by_id = apply_view_effects(tree, {}, [ViewEffect("setFilter", ("warn",), component="audit")])
    assert by_id == {_key(tree, "LogStream", 1): {"filter": "warn"}}
    by_type = apply_view_effects(tree, {}, [ViewEffect("setFilter", ("x",), "LogStream")])
    assert set(by_type) == {_key(tree, "LogStream"), _key(tree, "LogStream", 1)}
    key = _key(tree, "LogStream")
    assert apply_view_effects(tree, {}, [ViewEffect("setProp", ("height", 50), key)]) == {
        key: {"height": 50}
    }


def test_clear_reset_and_null(tree: RenderTree) -> None:
    key = _key(tree, "LogStream")
    start = {key: {"filter": "error", "height": 10}}
    assert apply_view_effects(tree, start, [ViewEffect("clearFilter", ("logs",))]) == {
        key: {"height": 10}
    }
    assert apply_view_effects(tree, start, [ViewEffect("setFilter", ("logs", None))]) == {
        key: {"height": 10}
    }
    assert apply_view_effects(tree, start, [ViewEffect("reset", (), key)]) == {}
    assert apply_view_effects(tree, start, [EmitEffect("toast", "hi")]) == start


@pytest.mark.parametrize(
    ("effect", "needle"),
    [
        (ViewEffect("setFilter", ("nothing", "x")), "no component with a 'filter' prop"),
        (ViewEffect("setFilter", ()), "needs a target"),
        (ViewEffect("explode", ("logs",)), "unknown view method"),
        (ViewEffect("setFilter", ("logs", 5)), "LogStream.filter must be a string"),
        (ViewEffect("setProp", ("id", "x"), "audit"), "cannot be changed"),
        (ViewEffect("setProp", ("height", "tall"), "audit"), "must be a integer"),
        (ViewEffect("setFilter", (1, "x")), "the target must be a string"),
    ],
)
def test_bad_view_effects_are_rejected(tree: RenderTree, effect: ViewEffect, needle: str) -> None:
    with pytest.raises(ViewEffectRejected, match=re.escape(needle)):
        apply_view_effects(tree, {}, [effect])


def test_overrides_beat_props_in_the_render(tree: RenderTree) -> None:
    key = _key(tree, "LogStream")
    resolved = with_overrides(tree.with_values({"$state.logs": ["a"]}), {key: {"filter": "a"}})
    node = resolved.find(key)
    assert node is not None
    assert node.props["filter"] == "a"
    assert node.props["data"] == ["a"]


def test_provider_names_follow_the_providers_rule() -> None:
    rule = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
    name = qualified_name("owner", "main", "server-monitor", "filter_logs")
    assert name == "owner:main:server-monitor:filter_logs"
    assert provider_name(name) == "owner__main__server-monitor__filter_logs"
    assert provider_name("ow ner:ma.in:p:t") == "ow_ner__ma_in__p__t"
    long = qualified_name("u" * 40, "main", "p" * 40, "tool")
    short = provider_name(long)
    assert rule.match(short)
    assert len(short) == 64
    assert short == provider_name(long)  # deterministic
    assert short != provider_name(long + "2")
    generated = qualified_name("3f2a9c1b" + "0" * 24, "main", "server-monitor", "filter_logs")
    assert provider_name(generated) == "3f2a9c1b__main__server-monitor__filter_logs"
