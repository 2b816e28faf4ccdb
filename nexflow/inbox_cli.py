"""``nexflow inbox dead [--json] | retry ID``: the dead letters and bringing one back.

A dead letter is a turn that was started ``bus.max_attempts`` times without finishing
(it crashed the gateway or failed each time). ``dead`` lists them from the database.
``retry`` asks the running gateway (``POST /api/v1/dead-letters/{id}/retry`` on its
loopback address, with the gateway token when one is set), so the turn runs at once; when
no gateway answers it resets the row in the database and the turn runs at the next start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import TYPE_CHECKING

from nexflow.gateway_client import ask_gateway
from nexflow.storage.open import storage_for

if TYPE_CHECKING:
    pass


async def _run(args: argparse.Namespace) -> int:
    from nexflow.cli import load_or_exit

    config = load_or_exit(args.config)
    if args.action == "retry":
        answered = ask_gateway(config, f"/api/v1/dead-letters/{args.id}/retry", {}, timeout_s=5)
        if answered is not None:
            status, body = answered
            if status == 200:
                print(f"dead letter {args.id} is running again")
                return 0
            try:
                message = json.loads(body)["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = body[:200]
            print(f"nexflow: the gateway refused: {message}")
            return 1
    storage = storage_for(config)
    await storage.open()
    try:
        if args.action == "dead":
            letters = await storage.dead_letters(None, args.limit)
            if args.json:
                print(json.dumps([d.to_json() for d in letters], ensure_ascii=False, indent=2))
                return 0
            for d in letters:
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(d.updated_at))
                text = d.event.message.replace("\n", " ")[:50]
                print(
                    f"{d.inbox_id:>6}  {when}  {d.event.channel:<9} {text:<50}  {d.last_error[:60]}"
                )
            if not letters:
                print("no dead letters")
            return 0
        item = await storage.retry_dead(args.id)
        if item is None:
            print(f"nexflow: {args.id} is not a dead letter (see `nexflow inbox dead`)")
            return 1
        print(f"dead letter {args.id} will run again when the gateway starts (it is not running)")
        return 0
    finally:
        await storage.close()


def main_inbox(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="nexflow inbox", description="the durable inbox")
    parser.add_argument("--config", help="config file (default $NEXFLOW_CONFIG, ./config.yml)")
    sub = parser.add_subparsers(dest="action", required=True)
    dead = sub.add_parser("dead", help="list the dead letters")
    dead.add_argument("--json", action="store_true", help="print JSON")
    dead.add_argument("--limit", type=int, default=100)
    retry = sub.add_parser("retry", help="run a dead letter again")
    retry.add_argument("id", type=int)
    return asyncio.run(_run(parser.parse_args(argv)))
