"""``GET /api/v1/sessions``: the caller's conversations with a title (the first thing the
user said) and a message count, newest first; ``q`` searches their messages' text, in any
script, case-insensitively, and never finds another user's."""

from __future__ import annotations

import httpx

from nexflow.testing.harness import GatewayHarness


async def test_search_finds_the_callers_conversations_only(
    gw: GatewayHarness, carol: httpx.AsyncClient
) -> None:
    milk = (await gw.chat("  Buy   milk\ntomorrow  "))["session"]
    await gw.chat("and bread", session=milk)
    russian = (await gw.chat("Привет, МИР"))["session"]
    resp = await carol.post("/api/v1/chat", json={"message": "milk for Carol"})
    carols = resp.json()["session"]

    listed = (await gw.http.get("/api/v1/sessions")).json()
    assert [s["id"] for s in listed] == [russian, milk]  # newest first, the owner's only
    first = listed[1]
    assert first["title"] == "Buy milk tomorrow"
    assert first["messages"] == 4
    assert first["channel"] == "web"
    assert set(first) >= {"id", "title", "updated_at", "channel", "messages"}

    found = (await gw.http.get("/api/v1/sessions", params={"q": "MILK"})).json()
    assert [s["id"] for s in found] == [milk]
    found = (await gw.http.get("/api/v1/sessions", params={"q": "echo: and"})).json()
    assert [s["id"] for s in found] == [milk]  # the assistant's words count too
    found = (await gw.http.get("/api/v1/sessions", params={"q": "мир"})).json()
    assert [s["id"] for s in found] == [russian]
    assert (await gw.http.get("/api/v1/sessions", params={"q": "nothing"})).json() == []

    hers = (await carol.get("/api/v1/sessions", params={"q": "milk"})).json()
    assert [s["id"] for s in hers] == [carols]
    assert (await carol.get("/api/v1/sessions", params={"q": "bread"})).json() == []
    limited = (await gw.http.get("/api/v1/sessions", params={"limit": 1})).json()
    assert len(limited) == 1
