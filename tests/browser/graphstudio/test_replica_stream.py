"""GraphStudio on one replica streams a turn run on another: two gateways on one
Postgres (the stream relayed over LISTEN/NOTIFY, then over Redis pub/sub), the assistant
open on replica X, a message for the open session sent over HTTP to replica Y (its model
streams text and calls a tool, then its next call is slow). The streamed text and the
tool line appear on X's page while the turn is still running."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness
from nexflow.testing.waiting import wait_until

pytestmark = pytest.mark.browser
PARTIAL = "Let me look at the clock first."
FINAL = "It is late enough."


def log(page: Page) -> Locator:
    return page.get_by_test_id("as-log")


@pytest.fixture(params=["postgres", "redis"])
def bus_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The replicas' environment for the stream relay: none (LISTEN/NOTIFY), then Redis."""
    if request.param == "redis":
        return {"NEXFLOW_REDIS__URL": request.getfixturevalue("redis_server").url}
    return {}


async def test_tokens_of_a_turn_on_y_appear_on_x_before_it_completes(
    tmp_path: Path, pg_url: str, bus_env: dict[str, str], browser: Browser
) -> None:
    async with (
        GatewayHarness(tmp_path / "x", storage_url=pg_url, env=dict(bus_env)) as x,
        GatewayHarness(tmp_path / "y", storage_url=pg_url, env=dict(bus_env)) as y,
    ):
        session = (await y.chat("hello"))["session"]
        page = await browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(f"{x.url}/#/assistant/{session}")
        await expect(page.locator("#as-input")).to_be_focused()
        await expect(log(page)).to_contain_text("Echo: hello")  # the history, from storage
        assert y.app is not None and y.app.relays is not None
        bus = type(y.app.relays.bus).__name__
        assert bus == ("RedisBus" if bus_env else "PostgresBus"), bus
        streams = y.app.web.state.services.streams
        await wait_until(lambda: streams.has_subscribers(session))  # Y heard of X's tab

        y.llm.push(Reply(text=PARTIAL, tool_calls=(("get_time", {}),)))
        y.llm.push(Reply(text=FINAL, delay_s=6.0))
        waiting = asyncio.create_task(y.chat("what time is it, slowly", session))
        await expect(log(page).locator(".as-tool").first).to_have_text(
            "⚙ Clock: current time", timeout=5_000
        )
        await expect(log(page)).to_contain_text(PARTIAL, timeout=5_000)
        assert not waiting.done()  # streamed while the turn still runs on Y
        assert x.llm.requests == []  # and it runs on Y only
        assert (await asyncio.wait_for(waiting, 20))["reply"] == FINAL
        await expect(log(page)).to_contain_text(FINAL, timeout=10_000)
        assert errors == []
        await page.close()
