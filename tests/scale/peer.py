"""A second process for the scale tests: ``python peer.py leader URL NAME`` campaigns and
prints ``leader`` once it leads (then waits to be killed); ``python peer.py publish
BACKEND URL CHANNEL COUNT PAD`` publishes COUNT payloads ``{"i": n, "pad": "x" * PAD}``
on CHANNEL and prints ``done``."""

import asyncio
import sys

from nexflow.scale.leader import PostgresLeadership


async def leader(url: str, name: str) -> None:
    async with PostgresLeadership(url).campaign(name):
        print("leader", flush=True)
        await asyncio.Event().wait()


async def publish(backend: str, url: str, channel: str, count: int, pad: int) -> None:
    from nexflow.scale.bus import bus_for

    bus = bus_for(url, None) if backend == "postgres" else bus_for("sqlite:///unused", url)
    await bus.open()
    try:
        for i in range(count):
            await bus.publish(channel, {"i": i, "pad": "x" * pad})
    finally:
        await bus.close()
    print("done", flush=True)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "leader":
        asyncio.run(leader(*args))
    elif command == "publish":
        backend, url, channel, count, pad = args
        asyncio.run(publish(backend, url, channel, int(count), int(pad)))
    else:
        raise SystemExit(f"unknown command {command!r}")
