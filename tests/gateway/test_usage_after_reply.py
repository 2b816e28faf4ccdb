"""Without a per-user budget limit a turn's usage is recorded after its reply is out (no
warning can depend on it); it is still in the statistics by the time anyone asks."""

from __future__ import annotations

from pathlib import Path

from nexflow.testing.harness import GatewayHarness


async def test_usage_is_in_the_statistics_as_soon_as_the_reply(tmp_path: Path) -> None:
    async with GatewayHarness(tmp_path / "home", client="openai") as gw:
        session = None
        for turn in range(1, 11):
            data = await gw.chat("hello", session)
            session = data["session"]
            stats = (await gw.http.get("/api/v1/statistics/overview")).json()
            assert stats["today"]["llm_calls"] == turn
            assert stats["today"]["tokens_in"] > 0
