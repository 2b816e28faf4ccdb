"""``nexflow pair list | approve CHANNEL CODE | deny CHANNEL CODE``.

Works on the database directly (the gateway may be running: SQLite in WAL mode takes a
second writer; the gateway caches no pairing state). The approval notice is queued in
the outbox and goes out when the gateway next delivers.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Literal

from nexflow.storage.open import storage_for


async def _run(args: argparse.Namespace) -> int:
    from nexflow.cli import load_or_exit
    from nexflow.web.routes_pairing import decide

    config = load_or_exit(args.config)
    storage = storage_for(config)
    await storage.open()
    try:
        if args.action == "list":
            requests = await storage.pairing_requests()
            for item in requests:
                left = max(0, round((item.expires_at - time.time()) / 60))
                print(
                    f"{item.channel:<10} {item.code}  {item.sender_id:<20} {item.name[:30]:<30} "
                    f"expires in {left} min"
                )
            if not requests:
                print("no pending pairing requests")
            return 0
        decision: Literal["approve", "deny"] = args.action
        result = await decide(storage, args.channel, args.code, decision)
        if result is None:
            print(f"no live pairing request {args.code!r} on {args.channel!r}")
            return 1
        who = f"{result['channel']}:{result['sender_id']} ({result['name']})"
        print(f"{result['status']}: {who}")
        return 0
    finally:
        await storage.close()


def main_pair(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="nexflow pair", description="pairing requests")
    parser.add_argument("--config", help="config file (default $NEXFLOW_CONFIG, ./config.yml)")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="pending requests")
    for action in ("approve", "deny"):
        cmd = sub.add_parser(action, help=f"{action} a request")
        cmd.add_argument("channel")
        cmd.add_argument("code")
    return asyncio.run(_run(parser.parse_args(argv)))
