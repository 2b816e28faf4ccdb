"""The flowchart template's editing tools (what the canvas and the AI call) and a sync
from a flowchart panel: positions, labels, arrows, refusals that change nothing."""

from __future__ import annotations

from typing import Any

from ws_support import USER

from nexflow.panels.runtime import PanelService
from nexflow.workspace.service import WorkspaceService


async def call(panels: PanelService, tool: str, **args: Any) -> Any:
    outcome = await panels.call_tool("flowchart", tool, args, user_id=USER)
    return outcome


async def test_flowchart_tools_edit_positions_labels_and_arrows(
    ws: WorkspaceService, panels: PanelService
) -> None:
    await panels.create(template="flowchart", owner=USER)
    assert (await call(panels, "add_node", id="mid", label="Think", after="start")).ok
    assert (await call(panels, "move_node", id="mid", x=120.04, y=-40)).ok
    assert (await call(panels, "rename_node", id="mid", label="  Decide ")).ok
    assert (await call(panels, "connect", source="mid", target="end")).ok
    assert (await call(panels, "label_edge", source="mid", target="end", label="yes")).ok
    assert (await call(panels, "remove_edge", source="start", target="end")).ok
    assert (await call(panels, "add_node", id="alt", label="Alt", x=5, y=6)).ok
    state: dict[str, Any] = dict(panels.get("flowchart").state)
    mid = next(n for n in state["nodes"] if n["id"] == "mid")
    assert mid == {"id": "mid", "label": "Decide", "shape": "box", "x": 120.0, "y": -40}
    assert next(n for n in state["nodes"] if n["id"] == "alt")["x"] == 5
    assert state["edges"] == [
        {"from": "start", "to": "mid", "label": ""},
        {"from": "mid", "to": "end", "label": "yes"},
    ]
    # the old tools keep working
    assert (await call(panels, "select_node", id="mid")).ok
    assert (await call(panels, "set_direction", direction="LR")).ok
    assert (await call(panels, "remove_node", id="mid")).ok
    state = panels.get("flowchart").state
    assert state["selected"] == "" and state["direction"] == "LR"
    assert state["edges"] == []


async def test_flowchart_refusals_change_nothing(
    ws: WorkspaceService, panels: PanelService
) -> None:
    await panels.create(template="flowchart", owner=USER)
    before = panels.get("flowchart").state
    refused = [
        await call(panels, "move_node", id="nope", x=1, y=2),
        await call(panels, "move_node", id="start", x="a", y=2),
        await call(panels, "rename_node", id="start", label="   "),
        await call(panels, "connect", source="start", target="end"),  # exists
        await call(panels, "connect", source="start", target="ghost"),
        await call(panels, "label_edge", source="end", target="start", label="x"),
        await call(panels, "remove_edge", source="end", target="start"),
        await call(panels, "add_node", id="start", label="again"),
    ]
    assert [o.ok for o in refused] == [False] * len(refused)
    assert "no node nope" in (refused[0].error or "")
    assert panels.get("flowchart").state == before
