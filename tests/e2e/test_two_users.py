"""Two users on one gateway (two Telegram users, and a web user with a token of their
own): neither is offered, shown or allowed to act on the other's panels, sessions,
confirmations or patches — by tool call, chat command, HTTP or MCP."""

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from nexflow.testing.channels import running_telegram
from nexflow.testing.fake_llm import Reply, callable_tools
from nexflow.testing.fake_telegram import FakeTelegram
from nexflow.testing.harness import GatewayHarness

ALICE, BOB = 1001, 1002
WEB_TOKEN = "carol-web-token-0123456789abcdef"
CONFIG = {
    "security": {
        "channels": {"telegram": {"policy": "allowlist", "allow": [str(ALICE), str(BOB)]}}
    },
    "permissions": {"roles": {"user": ["shell", "filesystem"]}},
    "web": {"users": {"carol": WEB_TOKEN}},
    "outbox": {"initial_backoff_s": 0.1, "max_backoff_s": 0.5},
    "memory": {"paging": False},
}


@pytest.fixture
async def two(tmp_path: Path) -> AsyncIterator[tuple[GatewayHarness, FakeTelegram]]:
    async with running_telegram(tmp_path, config=CONFIG) as running:
        yield running


def said(fake: FakeTelegram, chat: int) -> list[str]:
    return [s.text for s in fake.sent if s.chat_id == chat]


async def ask(fake: FakeTelegram, user: int, text: str, expect: str) -> str:
    before = len(said(fake, user))
    fake.message(user, text)
    await fake.wait_for(lambda: any(expect in t for t in said(fake, user)[before:]), within=15)
    return next(t for t in said(fake, user)[before:] if expect in t)


def offered(request: dict[str, Any]) -> set[str]:
    return callable_tools(request)  # with schemas, or named in load_tools


async def test_tools_panels_and_confirmations_stay_with_their_owner(
    two: tuple[GatewayHarness, FakeTelegram],
) -> None:
    gw, fake = two
    assert gw.app is not None and gw.app.panels is not None
    panels = gw.app.panels
    await ask(fake, ALICE, "/panel new todo", "To-do")
    await ask(fake, BOB, "/panel new todo", "To-do")
    alice_panel, bob_panel = (r for r in panels.instances())
    assert (alice_panel.id, bob_panel.id) == ("todo", "todo-2")
    alice_tool = next(t.spec.name for t in panels.tools_of("todo") if t.tool == "add_item")
    bob_tool = next(t.spec.name for t in panels.tools_of("todo-2") if t.tool == "add_item")

    # Bob's model is offered Bob's tools, never Alice's.
    gw.llm.push(Reply(text="hello Bob"))
    await ask(fake, BOB, "hi", "hello Bob")
    assert bob_tool in offered(gw.llm.requests[-1])
    assert not any("__todo__" in name for name in offered(gw.llm.requests[-1]))

    # A forged call to Alice's tool from Bob's turn reaches nothing.
    gw.llm.push(Reply(tool_calls=((alice_tool, {"text": "from bob"}),)), Reply(text="tried"))
    await ask(fake, BOB, "add to her list", "tried")
    assert "no tool named" in gw.llm.requests[-1]["messages"][-1]["content"]
    assert panels.get("todo").state["items"] == []

    # Chat commands: Bob sees and touches only his own panel.
    listing = await ask(fake, BOB, "/panels", "Templates")
    assert "todo-2" in listing and "- todo:" not in listing
    assert "no panel 'todo'" in await ask(fake, BOB, "/panel todo", "Panel error")
    assert "no panel 'todo'" in await ask(fake, BOB, "/panel delete todo", "Panel error")
    assert "todo" in {r.id for r in panels.instances()}

    # Alice's pending confirmation cannot be answered by Bob.
    marker = gw.home / "workspace" / "alice.txt"
    call = ("run_skill", {"name": "shell-run", "input": {"command": f"touch {marker}"}})
    gw.llm.push(Reply(tool_calls=(call,)), Reply(text="ran it"))
    fake.message(ALICE, "run my command")
    await fake.wait_for(lambda: any("touch" in t for t in said(fake, ALICE)), within=15)
    (pending,) = await gw.app.storage.approvals_for(None)
    refused = await ask(fake, BOB, f"/confirm {pending.id}", "not asked of you")
    assert "not asked of you" in refused
    assert not marker.exists()
    assert [a.id for a in await gw.app.storage.approvals_for(None)] == [pending.id]


async def test_web_user_sees_only_their_own(two: tuple[GatewayHarness, FakeTelegram]) -> None:
    gw, _ = two
    owner_panel = (await gw.http.post("/api/v1/panels", json={"template": "todo"})).json()
    owner_chat = await gw.chat("hello from the owner")
    carol = httpx.AsyncClient(
        base_url=gw.url, headers={"Authorization": f"Bearer {WEB_TOKEN}"}, timeout=30
    )
    async with carol:
        mine = (await carol.post("/api/v1/panels", json={"template": "notes"})).json()
        listed = [p["id"] for p in (await carol.get("/api/v1/panels")).json()]
        assert listed == [mine["id"]]
        assert (await carol.get("/api/v1/panels?all=true")).status_code == 403
        pid = owner_panel["id"]
        assert (await carol.get(f"/api/v1/panels/{pid}")).status_code == 404
        called = await carol.post(f"/api/v1/panels/{pid}/tools/add_item", json={"text": "x"})
        assert called.status_code == 404
        assert (await carol.delete(f"/api/v1/panels/{pid}")).status_code == 404
        assert (await carol.get(f"/api/v1/panels/{pid}/versions")).status_code == 404
        assert (await carol.get(f"/panels/{pid}")).status_code == 404
        # Sessions: the owner's conversation is not Carol's.
        sid = owner_chat["session"]
        assert (await carol.get(f"/api/v1/sessions/{sid}")).status_code in (403, 404)
        assert sid not in {s["id"] for s in (await carol.get("/api/v1/sessions")).json()}
        follow = await carol.post("/api/v1/chat", json={"message": "hi", "session": sid})
        assert follow.status_code == 403
        # MCP: Carol lists and calls her own panel tools only.
        headers = {"Authorization": f"Bearer {WEB_TOKEN}"}
        async with httpx2.AsyncClient(headers=headers) as transport_client:
            transport = streamable_http_client(f"{gw.url}/mcp", http_client=transport_client)
            async with Client(transport) as client:
                names = {t.name for t in (await client.list_tools()).tools}
        assert any("__notes__" in n for n in names)
        assert not any("__todo__" in n for n in names)
    everyone = [p["id"] for p in (await gw.http.get("/api/v1/panels?all=true")).json()]
    assert sorted(everyone) == sorted([pid, mine["id"]])
    assert [p["id"] for p in (await gw.http.get("/api/v1/panels")).json()] == [pid]


def tool_answer(gw: GatewayHarness) -> str:
    """The last tool message the model was given."""
    content: str = gw.llm.requests[-1]["messages"][-1]["content"]
    return content


async def test_memory_reminders_and_patches_stay_with_their_owner(
    two: tuple[GatewayHarness, FakeTelegram],
) -> None:
    gw, fake = two
    due = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    await ask(fake, ALICE, "/panel new todo", "To-do")
    item = '{"append": {"items": [{"text": "alice only", "done": false}]}}'
    patch = {"target": "panel:todo", "summary": "add", "content": item}
    for call, done in (
        (("memory_save", {"text": "alice's door code is 4711"}), "saved"),
        (("reminder_add", {"text": "alice's dentist", "at": due}), "reminded"),
        (("patch_propose", patch), "proposed"),
    ):
        gw.llm.push(Reply(tool_calls=(call,)), Reply(text=done))
        await ask(fake, ALICE, f"please {done}", done)
    assert gw.app is not None
    (alice_patch,) = await gw.app.workspaces.patches(gw.app.panels.get("todo").owner, "pending")  # type: ignore[union-attr]
    reminder_id = re.search(r"\br[0-9a-f]{8}\b", gw.llm.requests[-3]["messages"][-1]["content"])
    assert reminder_id is not None

    for call, refusal in (
        (("memory_get", {"id": 1}), "no memory item #1"),
        (("memory_search", {"query": "door code"}), ""),
        (("reminder_cancel", {"id": reminder_id.group(0)}), "no reminder"),
    ):
        gw.llm.push(Reply(tool_calls=(call,)), Reply(text="tried"))
        await ask(fake, BOB, "try it", "tried")
        assert "4711" not in tool_answer(gw) and "dentist" not in tool_answer(gw)
        assert refusal.lower() in tool_answer(gw).lower()
    refused = await ask(fake, BOB, f"/accept {alice_patch.id}", "patch")
    assert "only" in refused.lower()
    assert [p.status for p in await gw.app.workspaces.patches(alice_patch.user_id)] == ["pending"]  # type: ignore[union-attr]
    listed = await gw.app.reminders.list_for(alice_patch.user_id)
    assert [r.text for r in listed] == ["alice's dentist"]
