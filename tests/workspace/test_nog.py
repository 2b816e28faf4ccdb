"""The Nexus Object Graph: built from panels and files, updated incrementally, serialised
compactly for the LLM."""

from __future__ import annotations

import json
from pathlib import Path

from ws_support import USER, Env

from nexflow.panels import parse
from nexflow.panels.runtime import PanelService
from nexflow.panels.runtime.state import initial_state
from nexflow.panels.runtime.wiring import BUNDLED_TEMPLATES
from nexflow.workspace.nog import NexusObjectGraph, build_nog
from nexflow.workspace.service import WorkspaceService

SERVERS = "# Servers\n\n## db-1\nPostgres primary.\n\n## web-1\nnginx in front.\n"


def graph(todo_items: list[dict[str, object]]) -> NexusObjectGraph:
    panels = []
    for path in sorted(BUNDLED_TEMPLATES.glob("*.nxml")):
        definition = parse(path.read_text())
        state = initial_state(definition)
        if definition.id == "todo":
            state = {"items": todo_items}
        panels.append((definition.id, definition, state))
    return build_nog("u1/default", panels, {"notes/servers.md": SERVERS})


def test_entities_logic_views_and_relations() -> None:
    g = graph([{"text": "Restart db-1", "done": False}])
    assert g.nodes["todo"].kind == "view"
    assert g.nodes["todo.items"].kind == "entity"
    assert g.nodes["todo.items[0]"].label == "Restart db-1"
    assert g.nodes["todo.add_item"].kind == "logic"
    assert g.nodes["notes/servers.md#db-1"].type == "heading"
    rels = {(e.src, e.rel, e.dst) for e in g.edges}
    assert ("todo.add_item", "updates", "todo.items") in rels
    assert ("notes.open_note", "reads", "notes.notes") in rels
    assert ("todo.items", "contains", "todo.items[0]") in rels
    assert ("server-monitor", "has", "server-monitor.restart_node") in rels
    shows = {e.src for e in g.edges if e.rel == "shows" and e.dst == "server-monitor.cpu_load"}
    assert len(shows) == 1 and g.nodes[shows.pop()].detail == "Metric"
    triggers = [e for e in g.edges if e.rel == "triggers" and e.dst == "todo.clear_done"]
    assert len(triggers) == 1
    assert ("todo.items[0]", "mentions", "notes/servers.md#db-1") in rels
    counts = g.counts()
    assert counts["entity"] > 10 and counts["logic"] >= 19 and counts["view"] > 6


def test_incremental_update_replaces_only_one_source() -> None:
    g = graph([{"text": "Restart db-1", "done": False}])
    before = {k: v for k, v in g.nodes.items() if not k.startswith("todo")}
    todo = parse((BUNDLED_TEMPLATES / "todo.nxml").read_text())
    g.update_panel("todo", todo, {"items": [{"text": "Scale web-1", "done": True}]})
    assert g.nodes["todo.items[0]"].label == "Scale web-1"
    assert {k: v for k, v in g.nodes.items() if not k.startswith("todo")} == before
    mentions = {(e.src, e.dst) for e in g.edges if e.rel == "mentions"}
    assert ("todo.items[0]", "notes/servers.md#web-1") in mentions
    assert ("todo.items[0]", "notes/servers.md#db-1") not in mentions
    g.update_file("notes/servers.md", "# Servers\n\n## cache-1\nredis\n")
    assert "notes/servers.md#db-1" not in g.nodes
    assert not any(e.rel == "mentions" for e in g.edges)
    g.remove("todo")
    assert not any(k.startswith("todo") for k in g.nodes)
    assert not any(e.src.startswith("todo") or e.dst.startswith("todo") for e in g.edges)


def test_context_is_compact_and_focused() -> None:
    g = graph([{"text": "Restart db-1", "done": False}])
    text = g.to_context(focus="notes")
    lines = text.splitlines()
    assert lines[0].startswith("NOG u1/default: 6 panels")
    assert lines[1].startswith('[panel notes] "Notes"')
    assert ' [0] "Restart db-1" done=false' in text
    assert " tool add_item(text*:string) Adds an item to the to-do list →items" in text
    assert 'Metric"CPU"<cpu_load' in text
    assert '[note notes/servers.md] "Servers" § Servers | db-1 | web-1' in text
    assert "todo.items[0] mentions notes/servers.md#db-1" in text
    raw = sum(len(p.read_text()) for p in BUNDLED_TEMPLATES.glob("*.nxml"))
    assert len(text) < raw / 2  # the point of the NOG


async def test_service_keeps_the_nog_in_step_with_changes(
    env: Env, ws: WorkspaceService, panels: PanelService
) -> None:
    await panels.create(template="todo", owner=USER)
    g = await ws.nog(USER)
    assert "todo.items" in g.nodes and not any(k.startswith("todo.items[") for k in g.nodes)
    await panels.call_tool("todo", "add_item", {"text": "Restart db-1"}, user_id=USER)
    await ws.mirror.flush()
    assert g.nodes["todo.items[0]"].label == "Restart db-1"  # the mirror updated it
    patch = await ws.propose(USER, "file:notes/servers.md", SERVERS, "Servers", "chat")
    assert "notes/servers.md" not in g.nodes  # pending patches are not in the graph
    await ws.accept(patch.id, USER)
    assert g.nodes["notes/servers.md#db-1"].type == "heading"
    assert ("todo.items[0]", "mentions", "notes/servers.md#db-1") in {
        (e.src, e.rel, e.dst) for e in g.edges
    }
    await panels.delete("todo")
    await ws.mirror.flush()
    assert "todo" not in g.nodes
    # a fresh build from the files on main gives the same graph
    fresh = await env.restart()
    assert (await fresh.nog(USER)).nodes.keys() == g.nodes.keys()


def test_skills_and_plain_files(tmp_path: Path) -> None:
    skill = "---\nname: deploy\ndescription: Deploys the api service\n---\nbody"
    g = build_nog("x", [], {"skills/deploy/SKILL.md": skill, "src/app.py": "print(1)\n"})
    assert g.nodes["skill:deploy"].kind == "logic"
    assert g.nodes["skill:deploy"].detail == "Deploys the api service"
    assert g.nodes["src/app.py"].type == "file"
    assert json.dumps(g.counts())
