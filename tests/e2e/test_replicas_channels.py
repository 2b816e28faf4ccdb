"""Chat channels on replicas: two real ``nexflow serve`` processes on one Postgres.

Telegram allows one ``getUpdates`` poller per bot token: only the elected replica polls
the fake Bot API (which answers a second, concurrent poller 409); both can send. The
poller is SIGKILLed: the other replica takes over within seconds, the chat keeps
working, no update is answered twice and there is no storm of 409s.

Discord (in one process, two connectors against the fake gateway): only the leader of
``discord:<application id>:0`` holds a gateway connection, both send over REST, and when
the leader's database connection is killed the other IDENTIFYs and takes over.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from nexflow.scale.leader import PostgresLeadership
from nexflow.testing.channels import telegram_section
from nexflow.testing.fake_llm import FakeLLMServer
from nexflow.testing.fake_telegram import FakeTelegram
from nexflow.testing.harness import free_port
from nexflow.testing.process import gateway_env, process, serve_command, wait_healthy
from nexflow.testing.waiting import wait_until

pytestmark = pytest.mark.slow

OWNER = 4242
ELECTED = b"telegram_poller_elected"


def replies(fake: FakeTelegram) -> list[str]:
    return [s.text for s in fake.sent if s.chat_id == OWNER]


async def say(fake: FakeTelegram, text: str, within: float = 30.0) -> float:
    fake.message(OWNER, text)
    return await wait_until(lambda: f"Echo: {text}" in replies(fake), within)


class Replicas:
    """Two gateways on one Postgres, each its own home, port and log."""

    def __init__(self, tmp_path: Path, pg_url: str, llm: str, config: Path) -> None:
        self.ports = [free_port(), free_port()]
        self.logs = [tmp_path / f"gateway-{i}.log" for i in range(2)]
        self.envs = [
            gateway_env(
                tmp_path / f"home-{i}",
                llm,
                NEXFLOW_STORAGE__URL=pg_url,
                NEXFLOW_CONFIG=str(config),
                NEXFLOW_FLOWS__EXECUTOR_ID=f"gateway-{i}",
            )
            for i in range(2)
        ]
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, stack: ExitStack) -> Iterator[subprocess.Popen[bytes]]:
        for i in range(2):
            proc = stack.enter_context(
                process(serve_command(self.ports[i]), self.envs[i], self.logs[i])
            )
            self.procs.append(proc)
        return iter(self.procs)

    def elected(self) -> list[int]:
        """The replicas whose log says they won the Telegram poller's election."""
        return [i for i, log in enumerate(self.logs) if ELECTED in log.read_bytes()]


async def test_one_poller_and_take_over_after_sigkill(tmp_path: Path, pg_url: str) -> None:
    llm = FakeLLMServer()
    base = await llm.start()
    try:
        async with FakeTelegram() as fake:
            config = tmp_path / "config.yml"
            section = telegram_section(fake, stream_edits=False)
            config.write_text(
                yaml.safe_dump(
                    {
                        "security": {"owner": {"telegram": [str(OWNER)]}},
                        "outbox": {"initial_backoff_s": 0.1, "max_backoff_s": 0.5},
                        "connectors": {"telegram": section},
                    }
                )
            )
            replicas = Replicas(tmp_path, pg_url, base, config)
            with ExitStack() as stack:
                replicas.start(stack)
                for port, proc in zip(replicas.ports, replicas.procs, strict=True):
                    await wait_healthy(f"http://127.0.0.1:{port}", proc)
                await wait_until(lambda: bool(replicas.elected()), within=45)

                for word in ("one", "two", "three"):
                    await say(fake, word)
                (leader,) = replicas.elected()  # only one ever polled
                assert fake.conflicts == 0, "two pollers would answer each other 409"

                follower = 1 - leader
                replicas.procs[leader].send_signal(signal.SIGKILL)
                killed = time.monotonic()
                replicas.procs[leader].wait(10)
                fake.message(OWNER, "after the kill")
                await wait_until(lambda: follower in replicas.elected(), within=30)
                elected_s = time.monotonic() - killed
                await wait_until(lambda: "Echo: after the kill" in replies(fake), within=30)
                answered_s = time.monotonic() - killed
                for word in ("four", "five"):
                    await say(fake, word)
                polls_after = fake.conflicts
                await asyncio.sleep(2.0)  # a few long polls: no 409 ping-pong
                assert fake.conflicts == polls_after
                assert fake.conflicts <= 1  # at most the dead poller's superseded poll
                print(f"take-over: elected {elected_s:.2f} s, answered {answered_s:.2f} s")
                assert answered_s < 10

            counts = Counter(replies(fake))
            want = ["one", "two", "three", "after the kill", "four", "five"]
            assert all(counts[f"Echo: {w}"] == 1 for w in want), counts  # none answered twice
    finally:
        await llm.stop()


def hold_lock(pg_url: str, name: str) -> psycopg.Connection[Any]:
    """Another replica leading ``name``: a connection holding its advisory lock."""
    conn = psycopg.connect(pg_url, autocommit=True)
    conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (name,))
    return conn


def terminate_leader(pg_url: str, prefix: str) -> int:
    """Kill the backend holding the lock of a ``nexflow leader <prefix>…`` connection."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity a JOIN pg_locks l "
            "ON l.pid = a.pid WHERE l.locktype = 'advisory' AND l.granted "
            "AND a.application_name LIKE %s",
            (f"nexflow leader {prefix}%",),
        ).fetchall()
    return len(rows)


async def test_a_telegram_replica_that_does_not_poll_still_sends(
    tmp_path: Path, pg_url: str
) -> None:
    from connectors.telegram.config import TelegramConfig
    from connectors.telegram.connector import TelegramConnector
    from nexflow.bus.events import TextOut

    async with FakeTelegram() as fake:
        config = TelegramConfig.from_section(telegram_section(fake, stream_edits=False))
        connector = TelegramConnector(config, tmp_path / "files")
        connector.elect(PostgresLeadership(pg_url))
        other = hold_lock(pg_url, connector.poller_name)
        await connector.start()
        try:
            fake.message(OWNER, "are you there?")  # waits: nobody polls
            await connector.send(TextOut(channel="telegram", chat_id=str(OWNER), text="hi"))
            assert replies(fake) == ["hi"]
            await asyncio.sleep(0.5)
            assert not [m for m, _ in fake.calls if m == "getUpdates"]  # it never polled
            other.close()  # the leader went away: this one polls now
            event = await asyncio.wait_for(anext(connector.events()), 10)
            assert event.message == "are you there?"
            assert fake.conflicts == 0
        finally:
            other.close()
            await connector.stop()


async def test_discord_one_gateway_connection_per_shard(tmp_path: Path, pg_url: str) -> None:
    from connectors.discord.config import DiscordConfig
    from connectors.discord.connector import DiscordConnector
    from nexflow.bus.events import TextOut
    from nexflow.testing.fake_discord import FakeDiscord

    fake = FakeDiscord()
    await fake.start()
    config = DiscordConfig.model_validate(
        {
            "bot_token": fake.token,
            "api_base": fake.api_base,
            "gateway_url": fake.gateway_url,
            "guild_id": fake.guild_id,
            "guild_ready_timeout_s": 0.05,
        }
    )
    first = DiscordConnector(config, tmp_path / "a")
    second = DiscordConnector(config, tmp_path / "b")
    for connector in (first, second):
        connector.elect(PostgresLeadership(pg_url))
    general = fake.channels["general"]
    try:
        await first.start()
        await first.wait_ready(10)
        await second.start()
        await asyncio.sleep(1.0)
        assert fake.identifies == 1  # the second waits for the shard
        # both send (REST), leader or not
        await second.send(TextOut(channel="discord", chat_id=general, text="from the second"))
        await first.send(TextOut(channel="discord", chat_id=general, text="from the first"))
        assert [m.content for m in fake.sent] == ["from the second", "from the first"]

        assert terminate_leader(pg_url, "discord:") == 1  # the leader's connection dies
        await second.wait_ready(10)
        assert fake.identifies == 2
        alice = fake.add_user("alice")
        await fake.message("general", alice, "still there?", mention_bot=True)
        event = await asyncio.wait_for(anext(second.events()), 10)
        assert event.message == "still there?"
        await first.send(TextOut(channel="discord", chat_id=general, text="first still sends"))
        assert fake.sent[-1].content == "first still sends"
        await asyncio.sleep(1.0)
        assert fake.identifies == 2  # the first waits now; no tug of war
    finally:
        await second.stop()  # in reverse: each restores the endpoints it found
        await first.stop()
        await fake.stop()
