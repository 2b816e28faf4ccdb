"""The timings of replicas come from ``replicas:`` in the config (env
``NEXFLOW_REPLICAS__…``): same defaults as the constants they replace, a clear error for a
renewal too slow for its lease, and a gateway on Postgres uses them (the lease it takes
lives ``lease_ttl_s`` and is renewed every ``renew_s``; it deletes idle rate buckets
every ``bucket_prune_s``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest

from nexflow.config import load_config
from nexflow.config.errors import ConfigError
from nexflow.config.model import ReplicasConfig
from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness


def test_defaults_are_the_former_constants() -> None:
    config = load_config(None, {})
    assert config.replicas == ReplicasConfig(
        lease_ttl_s=6.0,
        renew_s=2.0,
        sweep_s=1.0,
        outbox_claim_s=30.0,
        presence_s=10.0,
        bucket_prune_s=60.0,
    )


def test_a_renewal_too_slow_for_the_lease_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, {"NEXFLOW_REPLICAS__LEASE_TTL_S": "3"})  # renew_s stays 2
    message = str(err.value)
    assert "replicas.renew_s (2) must be at most half of replicas.lease_ttl_s (3)" in message
    file = tmp_path / "config.yml"
    file.write_text("replicas:\n  lease_ttl_s: 20\n  renew_s: 11\n")
    with pytest.raises(ConfigError, match=r"renew_s \(11\) must be at most half"):
        load_config(file, {})
    assert load_config(file, {"NEXFLOW_REPLICAS__RENEW_S": "5"}).replicas.renew_s == 5.0
    with pytest.raises(ConfigError):
        load_config(None, {"NEXFLOW_REPLICAS__SWEEP_S": "0"})


def lease_left(pg_url: str, session: str) -> float:
    """Seconds the session's lease has left, on the database's clock."""
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT expires_at - extract(epoch FROM clock_timestamp()) FROM scale_leases "
            "WHERE key = %s",
            (f"session:{session}",),
        ).fetchone()
    assert row is not None
    return float(row[0])


async def test_a_gateway_on_postgres_uses_them(tmp_path: Path, pg_url: str) -> None:
    env = {
        "NEXFLOW_REPLICAS__LEASE_TTL_S": "2",
        "NEXFLOW_REPLICAS__RENEW_S": "0.25",
        "NEXFLOW_REPLICAS__SWEEP_S": "0.4",
        "NEXFLOW_REPLICAS__OUTBOX_CLAIM_S": "7",
        "NEXFLOW_REPLICAS__PRESENCE_S": "2.5",
    }
    async with GatewayHarness(tmp_path / "x", storage_url=pg_url, env=env) as x:
        assert x.app is not None and x.app.relays is not None
        replicas = x.app.gateway.replicas
        assert (replicas.ttl_s, replicas.renew_s, replicas.sweep_s) == (2.0, 0.25, 0.4)
        assert x.app.outbox.claim_s == 7.0
        assert [r.presence_s for r in x.app.relays.relays] == [2.5, 2.5]

        session = (await x.chat("hello"))["session"]
        x.llm.push(Reply(text="slow", delay_s=2.0))
        slow = asyncio.create_task(x.chat("a slow question", session))
        for _ in range(200):
            if replicas.holds(session):
                break
            await asyncio.sleep(0.01)
        lefts = []
        for _ in range(6):  # over 1.5 s: renewed every 0.25 s, never more than the TTL
            lefts.append(lease_left(pg_url, session))
            await asyncio.sleep(0.25)
        assert all(0 < left <= 2.0 for left in lefts), lefts
        assert min(lefts) > 1.0, lefts  # renewed well before it expires
        assert (await slow)["reply"] == "slow"


def bucket_keys(pg_url: str) -> set[str]:
    with psycopg.connect(pg_url) as conn:
        return {str(k) for (k,) in conn.execute("SELECT key FROM scale_buckets").fetchall()}


async def test_the_gateway_prunes_its_buckets(tmp_path: Path, pg_url: str) -> None:
    env = {"NEXFLOW_REPLICAS__BUCKET_PRUNE_S": "0.2"}
    async with GatewayHarness(tmp_path / "x", storage_url=pg_url, env=env) as x:
        assert x.app is not None and x.app.pruner is not None
        with psycopg.connect(pg_url) as conn:  # a user last seen long ago, and one just now
            conn.execute(
                "INSERT INTO scale_buckets (key, tokens, updated_at, granted) VALUES "
                "('rate:gone', 0, 0, true), "
                "('rate:here', 0, extract(epoch FROM clock_timestamp()), true)"
            )
        async with asyncio.timeout(5):
            while True:
                if "rate:gone" not in bucket_keys(pg_url):
                    break
                await asyncio.sleep(0.05)
        assert "rate:here" in bucket_keys(pg_url)
