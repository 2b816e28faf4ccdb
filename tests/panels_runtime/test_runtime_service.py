"""PanelService on a real SQLite file and the real sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest
from runtime_support import make_service, panel_with_handler

from nexflow.config.model import PanelLimitsConfig, PanelsConfig
from nexflow.panels.runtime import PanelService, TemplateNotFound
from nexflow.storage.sql_storage import SQLStorage
from nexflow.tools.base import ToolContext

MONITOR_TOOLS = {
    "owner__main__server-monitor__restart_node",
    "owner__main__server-monitor__filter_logs",
}


async def test_server_monitor_restart_from_the_chat_snapshot(service: PanelService) -> None:
    record = await service.create(template="server-monitor")
    assert (record.id, record.version) == ("server-monitor", 1)
    before = await service.snapshot(record.id, channel="telegram", chat_id="42")
    assert [b.label for b in before.buttons] == ["Emergency Restart"]
    assert "idle" in before.text
    assert "<b>CPU</b>: 0% ↑" in before.text

    outcome, after = await service.press(before.buttons[0].action, channel="telegram")
    assert outcome.ok, outcome.error
    assert outcome.state["status"] == "rebooting"
    assert outcome.effects == (
        {"kind": "emit", "event": "toast", "payload": "Restart sequence initiated"},
    )
    assert "rebooting" in after.text
    assert "Restart sequence initiated" in after.text
    assert service.get(record.id).version == 2


async def test_filter_logs_changes_the_view_filter(service: PanelService) -> None:
    await service.create(template="server-monitor")
    inst = service.get("server-monitor")
    # feed some log lines through a rollback-free path: a custom state commit via a tool
    outcome = await service.call_tool("server-monitor", "filter_logs", {"level": "error"})
    assert outcome.ok, outcome.error
    rendered = await service.render("server-monitor")
    stream = next(n for n in rendered.tree.walk() if n.type == "LogStream")
    assert stream.props["filter"] == "error"
    assert rendered.record.view == {stream.key: {"filter": "error"}}
    assert inst.state == rendered.record.state  # the view changed, the data did not


async def test_versions_record_every_run_and_rollback_restores(service: PanelService) -> None:
    await service.create(template="server-monitor")
    await service.call_tool("server-monitor", "restart_node", {}, triggered_by="user")
    await service.call_tool(
        "server-monitor", "filter_logs", {"level": "warn"}, triggered_by="ai", user_id="u1"
    )
    versions = await service.versions("server-monitor")
    assert [v.version for v in versions] == [3, 2, 1]
    assert [v.kind for v in versions] == ["tool", "tool", "create"]
    restart = versions[1]
    assert (restart.tool, restart.triggered_by) == ("restart_node", "user")
    assert restart.args == {"force": None}
    assert restart.state_before["status"] == "idle"
    assert restart.state_after["status"] == "rebooting"
    assert restart.effects[0]["event"] == "toast"
    assert (versions[0].triggered_by, versions[0].user_id) == ("ai", "u1")

    record = await service.rollback("server-monitor", 1)
    assert record.version == 4
    assert record.state["status"] == "idle"
    assert record.view == {}
    latest = (await service.versions("server-monitor", 1))[0]
    assert (latest.kind, latest.args) == ("rollback", {"to_version": 1})


async def test_a_press_is_applied_once_per_event(service: PanelService) -> None:
    """A retried HTTP request or a replayed flow step carries the same event id: the
    handler runs once, the repeat is answered from the version it made."""
    await service.create(template="server-monitor")
    first = await service.call_tool("server-monitor", "restart_node", {}, event_id="http:k1")
    again = await service.call_tool("server-monitor", "restart_node", {}, event_id="http:k1")
    assert first.ok and again.ok
    assert (again.version, again.state, again.effects) == (
        first.version,
        first.state,
        first.effects,
    )
    other = await service.call_tool("server-monitor", "restart_node", {}, event_id="http:k2")
    plain = await service.call_tool("server-monitor", "restart_node", {})
    assert (other.version, plain.version) == (first.version + 1, first.version + 2)
    versions = await service.versions("server-monitor")
    assert [v.version for v in versions] == [4, 3, 2, 1]  # k1 once, k2, no key, create


async def test_failed_call_changes_nothing(service: PanelService) -> None:
    await service.create(nxml=panel_with_handler("$state.count = 5; throw new Error('boom');"))
    outcome = await service.call_tool("hostile", "run", {})
    assert not outcome.ok
    assert outcome.error_code == "handler_failed"
    assert "Error: boom" in (outcome.error or "")
    assert "NXML line 8" in (outcome.error or "")
    assert outcome.state == {"count": 0, "status": "ok"}
    assert service.get("hostile").version == 1
    assert len(await service.versions("hostile")) == 1


OWNER = ToolContext("owner", "s", "web", "c")
STRANGER = ToolContext("someone-else", "s", "web", "c")


async def test_instances_survive_a_restart_and_tools_follow_them(
    storage: SQLStorage, sandbox_cache: Path, tmp_path: Path
) -> None:
    first = make_service(storage, sandbox_cache, tmp_path)
    await first.start()
    await first.create(template="server-monitor")
    await first.call_tool("server-monitor", "restart_node", {})
    second_copy = await first.create(template="server-monitor")
    assert second_copy.id == "server-monitor-2"
    assert {t.spec.name for t in first.tools_for(OWNER)} >= MONITOR_TOOLS
    assert first.tools_for(STRANGER) == []
    await first.stop()

    again = make_service(storage, sandbox_cache, tmp_path)
    await again.start()
    assert {r.id for r in again.instances()} == {"server-monitor", "server-monitor-2"}
    assert again.get("server-monitor").state["status"] == "rebooting"
    assert {t.spec.name for t in again.tools_for(OWNER)} >= MONITOR_TOOLS
    await again.delete("server-monitor")
    names = {t.spec.name for t in again.tools_for(OWNER)}
    assert not MONITOR_TOOLS & names
    assert "owner__main__server-monitor-2__restart_node" in names
    await again.stop()


async def test_template_names_are_checked(service: PanelService) -> None:
    with pytest.raises(TemplateNotFound, match=r"available: .*server-monitor"):
        await service.create(template="../etc/passwd")


async def test_limits_come_from_config_per_template(
    storage: SQLStorage, sandbox_cache: Path, tmp_path: Path
) -> None:
    tight = PanelLimitsConfig(fuel=5_000_000, memory_mb=16, wall_time_ms=200)
    config = PanelsConfig(template_limits={"hostile": tight})
    svc = make_service(storage, sandbox_cache, tmp_path, config)
    await svc.start()
    loop = "let x = 0; for (let i = 0; i < 200000; i++) { x += i; } $state.count = x % 7;"
    await svc.create(nxml=panel_with_handler(loop))
    outcome = await svc.call_tool("hostile", "run", {})
    assert not outcome.ok
    assert "fuel" in (outcome.error or "")
    await svc.create(nxml=panel_with_handler(loop, panel_id="relaxed"))
    assert (await svc.call_tool("relaxed", "run", {})).ok  # default limits
    await svc.stop()


FILE_PANEL = """<NexusPanel id="reader" title="Reader">
  <Capabilities><File path="notes/" mode="read" /></Capabilities>
  <Data><State name="text" type="string" /></Data>
  <Logic><Tool name="load" description="Reads a note">
    <Arg name="path" type="string" required="true" />
    <Handler>$state.text = $fs.read(path);</Handler>
  </Tool></Logic>
  <View><Text>{$state.text}</Text></View>
</NexusPanel>"""


async def test_capabilities_need_declaration_and_grant(
    storage: SQLStorage, sandbox_cache: Path, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    (workspace / "notes").mkdir(parents=True)
    (workspace / "notes" / "a.txt").write_text("hello")
    (workspace / "secret.txt").write_text("no")
    svc = make_service(storage, sandbox_cache, workspace)
    await svc.start()
    await svc.create(nxml=FILE_PANEL)
    denied = await svc.call_tool("reader", "load", {"path": "notes/a.txt"})
    assert not denied.ok
    assert "not granted" in (denied.error or "")
    assert svc.capabilities("reader")["effective"] == []

    await svc.grant("reader", ["file:notes/", "file:secret.txt"])  # the 2nd is not declared
    assert svc.capabilities("reader")["effective"] == ["file:notes/"]
    granted = await svc.call_tool("reader", "load", {"path": "notes/a.txt"})
    assert granted.ok, granted.error
    assert granted.state["text"] == "hello"
    outside = await svc.call_tool("reader", "load", {"path": "secret.txt"})
    assert not outside.ok
    assert granted.state == svc.get("reader").state
    await svc.stop()
