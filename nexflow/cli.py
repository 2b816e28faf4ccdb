"""The ``nexflow`` command: ``serve``, ``worker``, ``doctor``, ``migrate``, ``security audit``,
``version``.

Imports are deferred to the command that needs them so ``nexflow serve`` starts fast
(:func:`make_server` says how; docs/architecture.md, "Start-up").
Exit codes: 0 ok, 1 a check failed, 78 (EX_CONFIG) the configuration is unusable —
give systemd ``RestartPreventExitStatus=78`` so a bad config never crash-loops.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import ipaddress
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import uvicorn

    from nexflow.config.model import NexflowConfig

EX_CONFIG = 78


def _config_path(arg: str | None) -> Path | None:
    from nexflow.config.loader import find_config_path

    return find_config_path(arg)


def load_or_exit(arg: str | None) -> NexflowConfig:
    from nexflow.config import ConfigError, load_config

    try:
        return load_config(_config_path(arg))
    except ConfigError as exc:
        print(f"nexflow: {exc.render()}", file=sys.stderr)
        print("nexflow: not starting; fix the configuration and start again.", file=sys.stderr)
        raise SystemExit(EX_CONFIG) from None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    with frozen_startup():
        server = _serve_setup(args)
    if server is None:
        return EX_CONFIG
    server.run()
    return 0 if server.started else 1


def _serve_setup(args: argparse.Namespace) -> uvicorn.Server | None:
    """The configuration and the server; None (after saying why) when it is unusable."""
    config = load_or_exit(args.config)
    web = config.web.model_copy(
        update={k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    )
    config = config.model_copy(update={"web": web})
    if config.web.token is None and not is_loopback(config.web.host):
        print(
            f"nexflow: refusing to listen on {config.web.host}: no gateway token is set, so only "
            "loopback (127.0.0.1) is allowed.\n"
            "  Set NEXFLOW_GATEWAY_TOKEN (or web.token in config.yml) to listen elsewhere.",
            file=sys.stderr,
        )
        return None

    from nexflow.config import ConfigError

    try:
        return make_server(config, _config_path(args.config))
    except ConfigError as exc:
        print(f"nexflow: {exc.render()}", file=sys.stderr)
        return None


@contextlib.contextmanager
def frozen_startup() -> Iterator[None]:
    """The cyclic GC is off inside: the imports and the build make some 130,000 objects
    that live as long as the process, and collections while they pile up walk them again
    and again (~60 ms of a ~1 s start). Then they are frozen (``gc.freeze``), so no later
    collection walks them either. Cycles that became garbage meanwhile (~1,400 objects)
    stay allocated."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def make_server(config: NexflowConfig, config_path: Path | None = None) -> uvicorn.Server:
    """Import the gateway, build it (logging configured) and wrap it in a uvicorn server
    that is not started yet. Raises ``ConfigError`` for a section the model cannot check
    (a connector's)."""
    import uvicorn

    from nexflow.app import build_application
    from nexflow.observability.logging import LogHub, configure_logging

    hub = LogHub()
    configure_logging(config.logging.level, config.logging.format, hub)
    application = build_application(config, hub)
    from nexflow.config.edit import ConfigFile

    # The file the settings page edits: the one this gateway was started with.
    application.web.state.config_file = ConfigFile(config_path)
    return uvicorn.Server(
        uvicorn.Config(
            application.web,
            host=config.web.host,
            port=config.web.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            ws_max_size=config.web.max_message_chars * 4 + 65536,
        )
    )


def cmd_worker(args: argparse.Namespace) -> int:
    """``nexflow worker``: run flow runs from the shared queue (:mod:`nexflow.worker`)."""
    config = load_or_exit(args.config)
    from nexflow.worker import run_worker

    return run_worker(config, health_host=args.health_host, health_port=args.health_port)


def cmd_version(_: argparse.Namespace) -> int:
    from nexflow import __version__

    print(f"nexflow {__version__}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from nexflow.doctor import run_doctor

    return run_doctor(_config_path(args.config))


def cmd_migrate(args: argparse.Namespace) -> int:
    """``nexflow migrate sqlite-to-postgres``: exit 0 when every table matches, 1 on a
    mismatch or an error, 2 when refused (no rows written)."""
    import asyncio
    import functools

    from nexflow.storage import transfer, transfer_report
    from nexflow.storage.base import StorageError
    from nexflow.storage.engine import redact

    config = load_or_exit(args.config)
    source = Path(args.source).expanduser() if args.source else config.database_path
    target = args.to or (config.storage_url if config.uses_postgres else None)
    if target is None or not target.startswith(("postgresql://", "postgres://")):
        print(
            "nexflow: no Postgres to move to: give --to postgresql://user:password@host/db "
            "or set storage.url (NEXFLOW_STORAGE__URL)",
            file=sys.stderr,
        )
        return 2
    out = functools.partial(print, flush=True)
    memory = config.memory_path if config.memory.enabled else None
    out(f"from  sqlite {source}")
    out(f"to    {redact(target)}")
    try:
        if args.verify:
            reports = asyncio.run(transfer.verify(source, target, memory=memory))
        else:
            out(transfer_report.refuse_in_flight(config.flows.database_for(config.home)))
            out("stop the gateway before moving: rows written during the copy stay behind")
            reports = asyncio.run(transfer.transfer(source, target, memory=memory, out=out))
    except transfer.TransferRefused as exc:
        print(f"nexflow: refused: {exc}", file=sys.stderr)
        return 2
    except StorageError as exc:
        print(f"nexflow: {exc}", file=sys.stderr)
        return 1
    transfer_report.render(reports, out)
    if not args.verify:
        moved = any(r.name == "memory_pages" for r in reports)
        out(transfer_report.memory_note(config.memory_path, config.workspace_dir, moved))
        workspaces = config.workspaces.root or config.home / "workspaces"
        out(transfer_report.workspace_note(workspaces, config.workspace_dir))
    bad = [r.name for r in reports if not r.ok]
    if bad:
        out(f"MISMATCH in {len(bad)} of {len(reports)} tables: {', '.join(bad)}")
        return 1
    out(f"all {len(reports)} tables match (rows and checksums).")
    if not args.verify and not config.uses_postgres:
        out(f"now set storage.url: {redact(target)} (NEXFLOW_STORAGE__URL) and start the gateway")
    return 0


# Command groups with their own parsers (so `nexflow skills --help` lists theirs).
GROUPS = {
    "pair": ("nexflow.pairing_cli", "main_pair", "pairing: list | approve|deny CHANNEL CODE"),
    "panels": ("nexflow.panels.cli", "main_panels", "panels: validate | install | verify | remove"),
    "skills": ("nexflow.skills.cli", "main_skills", "skills: list | run | install | verify"),
    "security": ("nexflow.security_audit", "main_security", "security: audit [--json] [--fix]"),
    "inbox": ("nexflow.inbox_cli", "main_inbox", "inbox: dead [--json] | retry ID"),
    "tasks": ("nexflow.tasks_cli", "main_tasks", "tasks: dead [--json] | retry ID"),
    "import": (
        "nexflow.importers.cli",
        "main_import",
        "import from another agent: openclaw|nanobot|hermes DIR [--dry-run]",
    ),
}


def run_group(name: str, argv: list[str]) -> int:
    import importlib

    module, func, _ = GROUPS[name]
    entry = getattr(importlib.import_module(module), func)
    return int(entry(argv))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nexflow", description="Self-hosted AI agent gateway.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080)")
    serve.add_argument("--config", help="config file (default $NEXFLOW_CONFIG, ./config.yml)")
    serve.set_defaults(func=cmd_serve)
    worker = sub.add_parser("worker", help="run flow runs from the shared queue (Postgres)")
    worker.add_argument("--config", help="config file (default $NEXFLOW_CONFIG, ./config.yml)")
    worker.add_argument("--health-port", type=int, help="serve GET /health on this port")
    worker.add_argument("--health-host", default="0.0.0.0", help="its address (default all)")
    worker.set_defaults(func=cmd_worker)
    doctor = sub.add_parser("doctor", help="check config, model, channels; say how to fix")
    doctor.add_argument("--config")
    doctor.set_defaults(func=cmd_doctor)
    for name, (_, _, summary) in GROUPS.items():
        group = sub.add_parser(name, help=summary, add_help=False)
        group.add_argument("rest", nargs=argparse.REMAINDER)
        group.set_defaults(func=lambda a, n=name: run_group(n, a.rest))
    migrate = sub.add_parser("migrate", help="move the database: sqlite-to-postgres")
    moves = migrate.add_subparsers(dest="move", required=True)
    to_pg = moves.add_parser(
        "sqlite-to-postgres",
        help="copy the SQLite database into an empty Postgres one, with counts and checksums",
    )
    to_pg.add_argument("--from", dest="source", help="SQLite file (default: storage.path)")
    to_pg.add_argument("--to", help="postgresql:// URL (default: storage.url)")
    to_pg.add_argument("--verify", action="store_true", help="compare only; copy nothing")
    to_pg.add_argument("--config")
    to_pg.set_defaults(func=cmd_migrate)
    version = sub.add_parser("version", help="print the version")
    version.set_defaults(func=cmd_version)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] in GROUPS:
        return run_group(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
