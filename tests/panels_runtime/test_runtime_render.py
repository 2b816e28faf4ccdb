"""Rendering: bindings through the sandbox, chat snapshot text, HTML preview."""

from __future__ import annotations

import pytest

from nexflow.panels.runtime import PanelService
from nexflow.panels.runtime.html import preview_page
from nexflow.panels.runtime.snapshot import MAX_TEXT, parse_action
from nexflow.panels.runtime.wiring import BUNDLED_TEMPLATES

SERVER_MONITOR_SNAPSHOT = (
    "<b>Cluster Health</b>\n<b>CPU</b>: 0% ↑\n<b>System Status</b>: 🔵 idle\n<i>Logs</i>\n"
    "<i>no lines</i>"
)

LOGS = """<NexusPanel id="logs" title="Logs">
  <Data><State name="logs" type="list" default='[{"level": "info", "message": "started"},
    {"level": "error", "message": "disk &lt;full&gt;"}, "plain error line", "ok line"]' />
  </Data>
  <Logic><Tool name="only" description="Filter">
    <Arg name="level" type="string" />
    <Handler>$view.setFilter('logs', level);</Handler>
  </Tool></Logic>
  <View><LogStream data="{$state.logs}" /></View>
</NexusPanel>"""


async def test_server_monitor_snapshot_text(service: PanelService) -> None:
    await service.create(template="server-monitor")
    snap = await service.snapshot("server-monitor", channel="telegram", chat_id="7")
    assert snap.text == SERVER_MONITOR_SNAPSHOT
    assert (snap.channel, snap.chat_id, snap.title) == ("telegram", "7", "Cluster Health")
    assert parse_action(snap.buttons[0].action) == ("server-monitor", "view/0/2")


@pytest.mark.parametrize("template", sorted(p.stem for p in BUNDLED_TEMPLATES.glob("*.nxml")))
async def test_every_bundled_template_renders(service: PanelService, template: str) -> None:
    record = await service.create(template=template)
    rendered = await service.render(record.id)
    assert rendered.binding_errors == ()
    assert rendered.tree.unresolved == []
    snap = await service.snapshot(record.id)
    assert snap.text.startswith(f"<b>{rendered.tree.title}</b>")
    page = preview_page(rendered.tree, record.id)
    assert page.startswith("<!doctype html>")


async def test_log_filter_shows_in_snapshot_and_page(service: PanelService) -> None:
    await service.create(nxml=LOGS)
    everything = (await service.snapshot("logs")).text
    assert "disk &lt;full&gt;" in everything
    assert "ok line" in everything
    assert (await service.call_tool("logs", "only", {"level": "error"})).ok
    filtered = (await service.snapshot("logs")).text
    assert "(filter: error)" in filtered
    assert "[error] disk &lt;full&gt;" in filtered
    assert "plain error line" in filtered
    assert "started" not in filtered
    assert "ok line" not in filtered
    rendered = await service.render("logs")
    page = preview_page(rendered.tree, "logs")
    assert "ok line" not in page
    assert "[error] disk &lt;full&gt;" in page


async def test_snapshot_text_is_capped(service: PanelService) -> None:
    lines = "[" + ",".join(f'"{"x" * 50} {i}"' for i in range(400)) + "]"
    xml = (
        '<NexusPanel id="big" title="Big">'
        f'<Data><State name="lines" type="list" default=\'{lines}\' /></Data>'
        '<View><List items="{$state.lines}" /><Code>' + "y" * 5000 + "</Code></View>"
        "</NexusPanel>"
    )
    await service.create(nxml=xml)
    text = (await service.snapshot("big")).text
    assert len(text) <= MAX_TEXT
    assert text.count("<pre>") == text.count("</pre>")


async def test_binding_errors_are_reported_not_fatal(service: PanelService) -> None:
    xml = """<NexusPanel id="b" title="B">
  <Data><State name="o" type="object" /></Data>
  <View><Metric label="Deep" value="{$state.o.a.b}" /><Metric label="Ok" value="{1 + 1}" /></View>
</NexusPanel>"""
    await service.create(nxml=xml)
    rendered = await service.render("b")
    assert len(rendered.binding_errors) == 1
    assert "$state.o.a.b" in rendered.binding_errors[0]
    values = {
        n.props["label"]: n.props.get("value") for n in rendered.tree.walk() if n.type == "Metric"
    }
    assert values == {"Deep": None, "Ok": 2}
