"""A turn that raises every time runs `bus.max_attempts` times, then is a dead letter: its
sender is told once, in their language, and the session's later messages are answered."""

import asyncio
from pathlib import Path
from typing import Any

import pytest

from nexflow.testing.harness import GatewayHarness


async def test_a_turn_that_raises_every_time_is_buried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"NEXFLOW_BUS__MAX_ATTEMPTS": "3", "NEXFLOW_WEB__REPLY_TIMEOUT_S": "10"}
    async with GatewayHarness(tmp_path / "home", env=env) as gw:
        assert gw.app is not None
        orchestrator = gw.app.gateway.runner._orchestrator
        real = orchestrator.run_turn
        runs: list[str] = []

        async def flaky(event: Any, *args: Any, **kwargs: Any) -> Any:
            runs.append(event.message)
            if event.message == "boom":
                raise RuntimeError("a bug in the turn")
            return await real(event, *args, **kwargs)

        monkeypatch.setattr(orchestrator, "run_turn", flaky)
        first = await gw.chat("/lang ru")
        session = first["session"]
        reply = await gw.chat("boom", session=session)
        assert reply["error"] == "dead_letter"
        assert "отложено" in reply["reply"]  # told plainly, in their language
        assert runs.count("boom") == 3
        after = await gw.chat("hello", session=session)
        assert after["reply"] == "Echo: hello"
        dead = (await gw.http.get("/api/v1/dead-letters")).json()
        assert [(d["message"], d["attempts"]) for d in dead] == [("boom", 3)]
        assert "RuntimeError: a bug in the turn" in dead[0]["error"]
        await asyncio.sleep(0.1)
        assert runs.count("boom") == 3  # never replayed by itself
