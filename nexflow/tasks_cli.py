"""``nexflow tasks dead [--json] | retry ID``: dead-lettered tasks and re-queueing one.

A dead-lettered task is a flow run that failed after one of its nodes ran all of its
tries (``docs/flows.md#dead-letters``). Both actions ask the running gateway on its
loopback address (``GET /api/v1/tasks?status=dead&all=true``, ``POST
/api/v1/tasks/{id}/control {"action": "retry"}``, with the gateway token when one is
set): runs live in the flow engine's database, which only the gateway's engine opens
(a second DBOS executor with the same id would take its runs over). When no gateway
answers, the command says so and exits 1.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING, Any

from nexflow.gateway_client import ask_gateway

if TYPE_CHECKING:
    from nexflow.config.model import NexflowConfig


def _message(body: str) -> str:
    try:
        return str(json.loads(body)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return body[:200]


def _print_dead(tasks: list[dict[str, Any]]) -> None:
    for t in tasks:
        updated = t.get("updated_at")
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(updated)) if updated else "-"
        error = str(t.get("error") or "").replace("\n", " ")[:60]
        print(f"{t['id']:<40} {when}  {t['flow']:<20} {t.get('dead_at') or '-':<16} {error}")
    if not tasks:
        print("no dead-lettered tasks")


def run(args: argparse.Namespace, config: NexflowConfig) -> int:
    if args.action == "dead":
        answered = ask_gateway(config, "/api/v1/tasks?status=dead&all=true")
    else:
        answered = ask_gateway(config, f"/api/v1/tasks/{args.id}/control", {"action": "retry"})
    if answered is None:
        print("nexflow: the gateway is not running (tasks live in its flow engine): start it")
        return 1
    status, body = answered
    if status != 200:
        print(f"nexflow: the gateway refused: {_message(body)}")
        return 1
    data = json.loads(body)
    if args.action == "dead":
        if args.json:
            print(json.dumps(data["tasks"], ensure_ascii=False, indent=2))
        else:
            _print_dead(data["tasks"])
        return 0
    print(f"task {args.id} re-queued as {data['run_id']} ({data['task']['status']})")
    return 0


def main_tasks(argv: list[str]) -> int:
    from nexflow.cli import load_or_exit

    parser = argparse.ArgumentParser(prog="nexflow tasks", description="flow runs as tasks")
    parser.add_argument("--config", help="config file (default $NEXFLOW_CONFIG, ./config.yml)")
    sub = parser.add_subparsers(dest="action", required=True)
    dead = sub.add_parser("dead", help="list the dead-lettered tasks")
    dead.add_argument("--json", action="store_true", help="print JSON")
    retry = sub.add_parser("retry", help="re-queue a dead-lettered task from its failed node")
    retry.add_argument("id")
    args = parser.parse_args(argv)
    return run(args, load_or_exit(args.config))
