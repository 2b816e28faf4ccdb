import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nexflow.scale.leases import (
    LeaseBoard,
    MemoryLeaseBoard,
    PostgresLeaseBoard,
    lease_board_for,
)
from nexflow.storage.engine import PostgresEngine, SQLiteEngine


@pytest.fixture(params=["memory", "postgresql"])
async def board(request: pytest.FixtureRequest) -> AsyncIterator[LeaseBoard]:
    if request.param == "memory":
        yield MemoryLeaseBoard()
        return
    engine = PostgresEngine(request.getfixturevalue("pg_url"))
    await engine.open()
    pg = PostgresLeaseBoard(engine)
    await pg.open()
    yield pg
    await engine.close()


async def test_a_held_lease_is_refused_to_another_owner(board: LeaseBoard) -> None:
    lease = await board.acquire("s1", "a", 5)
    assert lease is not None and lease.token == 1
    assert await board.acquire("s1", "b", 5) is None
    held = await board.holder("s1")
    assert held is not None and (held.owner, held.token) == ("a", 1)
    again = await board.acquire("s1", "a", 5)
    assert again is not None and again.token == 1  # re-acquiring one's own keeps the token


async def test_expired_lease_is_taken_over_with_a_higher_token(board: LeaseBoard) -> None:
    old = await board.acquire("s1", "a", 0.2)
    assert old is not None
    await asyncio.sleep(0.35)
    assert await board.holder("s1") is None
    new = await board.acquire("s1", "b", 5)
    assert new is not None and new.token > old.token
    assert not await board.renew(old)  # the former holder learns it lost the key
    await board.release(old)  # and cannot give away what it no longer holds
    held = await board.holder("s1")
    assert held is not None and held.owner == "b"


async def test_renew_by_a_non_holder_is_refused(board: LeaseBoard) -> None:
    lease = await board.acquire("s1", "a", 5)
    assert lease is not None
    forged = type(lease)(lease.key, "b", lease.token, 5, lease.expires_at)
    assert not await board.renew(forged)
    assert await board.renew(lease)
    stale_token = type(lease)(lease.key, "a", lease.token + 7, 5, lease.expires_at)
    assert not await board.renew(stale_token)


async def test_renew_keeps_a_lease_alive_past_its_first_expiry(board: LeaseBoard) -> None:
    lease = await board.acquire("s1", "a", 0.4)
    assert lease is not None
    for _ in range(3):
        await asyncio.sleep(0.2)
        assert await board.renew(lease)
    assert await board.acquire("s1", "b", 5) is None


async def test_release_frees_the_key_and_the_next_token_is_higher(board: LeaseBoard) -> None:
    lease = await board.acquire("s1", "a", 5)
    assert lease is not None
    await board.release(lease)
    assert await board.holder("s1") is None
    assert not await board.renew(lease)
    nxt = await board.acquire("s1", "b", 5)
    assert nxt is not None and nxt.token == lease.token + 1


async def test_claim_expired_takes_dead_holders_keys_not_released_ones(board: LeaseBoard) -> None:
    dead = await board.acquire("dead", "a", 0.2)
    released = await board.acquire("released", "a", 0.2)
    live = await board.acquire("live", "a", 30)
    assert dead and released and live
    await board.release(released)
    await asyncio.sleep(0.35)
    claimed = await board.claim_expired("sweeper", 5)
    assert [(c.key, c.owner, c.token) for c in claimed] == [("dead", "sweeper", 2)]
    assert await board.claim_expired("sweeper", 5) == []
    assert not await board.renew(dead)


async def test_concurrent_acquire_from_two_engines_grants_each_key_once(pg_url: str) -> None:
    engines = [PostgresEngine(pg_url), PostgresEngine(pg_url)]
    for engine in engines:
        await engine.open()
    try:
        boards = [PostgresLeaseBoard(e) for e in engines]
        await asyncio.gather(*(b.open() for b in boards))
        keys = [f"session-{i}" for i in range(40)]

        async def grab(board: PostgresLeaseBoard, owner: str) -> list[str]:
            won = []
            for key in keys:
                if await board.acquire(key, owner, 30) is not None:
                    won.append(key)
            return won

        won_a, won_b = await asyncio.gather(grab(boards[0], "a"), grab(boards[1], "b"))
        assert sorted(won_a + won_b) == sorted(keys)  # every key granted exactly once
        assert not set(won_a) & set(won_b)
        for key in keys:
            held = await boards[1].holder(key)
            assert held is not None and held.owner == ("a" if key in won_a else "b")
    finally:
        for engine in engines:
            await engine.close()


async def test_two_sweepers_claim_disjoint_keys(pg_url: str) -> None:
    engines = [PostgresEngine(pg_url), PostgresEngine(pg_url)]
    for engine in engines:
        await engine.open()
    try:
        boards = [PostgresLeaseBoard(e) for e in engines]
        for b in boards:
            await b.open()
        for i in range(30):
            assert await boards[0].acquire(f"k{i}", "dead-replica", 0.1) is not None
        await asyncio.sleep(0.25)
        got = await asyncio.gather(
            *(boards[i % 2].claim_expired(f"sweeper-{i}", 30, limit=4) for i in range(12))
        )
        keys = [lease.key for batch in got for lease in batch]
        assert sorted(keys) == sorted(f"k{i}" for i in range(30))
        assert len(keys) == len(set(keys))
    finally:
        for engine in engines:
            await engine.close()


async def test_lease_board_for_sqlite_is_in_memory(tmp_path: Path) -> None:
    engine = SQLiteEngine(tmp_path / "n.db")
    await engine.open()
    try:
        assert isinstance(await lease_board_for(engine), MemoryLeaseBoard)
    finally:
        await engine.close()
