"""``nexflow skills list [--source] | validate PATH | run NAME [--input JSON] [--yes]``
and the verified install commands ``install | verify | update | remove``
(:mod:`nexflow.skills.install.cli`). Bad input is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from nexflow.skills.eligibility import HostContext, evaluate
from nexflow.skills.errors import SkillError, SkillInputInvalid
from nexflow.skills.explain import explain
from nexflow.skills.install import Installer, Lock
from nexflow.skills.install import cli as install_cli
from nexflow.skills.loader import load_skill
from nexflow.skills.model import Skill

INDEX_ENV = "NEXFLOW_SKILLS_INDEX"

if TYPE_CHECKING:
    from nexflow.config.model import NexflowConfig
    from nexflow.skills.service import SkillsService


def _config_and_service() -> tuple[NexflowConfig, SkillsService]:
    from nexflow.cli import load_or_exit
    from nexflow.skills.service import build_skills
    from nexflow.storage.open import storage_for
    from nexflow.tools.registry import ToolRegistry

    config = load_or_exit(None)
    # The storage is only for the gateway's audit hook; the CLI runs the runner directly.
    service = build_skills(config, storage_for(config), ToolRegistry())
    service.registry.reload()
    return config, service


def _line(skill: Skill) -> str:
    mark = "ok " if skill.available else "-- "
    why = "" if skill.available else f"  ({skill.reason})"
    return f"{mark} {skill.emoji or ' '} {skill.name}: {skill.description[:90]}{why}"


def _origin(skill: Skill, lock: Lock) -> str:
    """Where a skill came from: bundled, installed (with its source) or the user's."""
    from nexflow.skills.model import BUNDLED_SKILLS

    folder = skill.directory.resolve()
    for name, entry in lock.entries.items():
        if lock.folder_of(name).resolve() == folder:
            version = f" {entry.version}" if entry.version else ""
            return f"installed from {entry.source}{version} ({entry.installed_at})"
    if folder.is_relative_to(BUNDLED_SKILLS.resolve()):
        return "bundled"
    return f"user ({skill.directory.parent})"


def cmd_list(args: argparse.Namespace) -> int:
    config, service = _config_and_service()
    skills = service.registry.list()
    lock = _installer(config, None).lock() if args.source else None
    for skill in skills:
        print(_line(skill))
        if lock is not None:
            print(f"      source: {_origin(skill, lock)}")
    ready = sum(s.available for s in skills)
    print(
        f"\n{ready} of {len(skills)} skills available; roots: "
        + ", ".join(str(r) for r in service.registry.roots)
    )
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    path = Path(args.path)
    file = path / "SKILL.md" if path.is_dir() else path
    if not file.is_file():
        print(f"no SKILL.md at {path}", file=sys.stderr)
        return 1
    skill = evaluate(load_skill(file), HostContext())
    print(_line(skill))
    for warning in skill.warnings:
        print(f"   warning: {warning}")
    return 0 if skill.available else 1


def cmd_run(args: argparse.Namespace) -> int:
    """Exit 0: the skill ran and succeeded; 1: it failed or was refused; 2: bad input."""
    try:
        payload = json.loads(args.input)
    except ValueError as exc:
        print(f"--input is not JSON: {exc}", file=sys.stderr)
        return 2
    if not isinstance(payload, dict):
        print(
            f'--input must be a JSON object (e.g. \'{{"path": "README.md"}}\'), '
            f"not {type(payload).__name__}",
            file=sys.stderr,
        )
        return 2
    config, service = _config_and_service()
    try:
        skill = service.registry.get(args.name)
    except SkillError as exc:
        print(exc.message, file=sys.stderr)
        return 1
    if not skill.available:
        print(f"{skill.name} is unavailable: {skill.reason}", file=sys.stderr)
        return 1
    if not skill.runnable:
        print(explain(skill))
        return 0

    if asyncio.run(service.run_tool.needs_confirmation(skill)) and not args.yes:
        from nexflow.skills.permissions import confirmation

        title, detail = confirmation(skill, payload)
        print(f"{title}\n{detail}")
        if not sys.stdin.isatty() or input("Run it? [y/N] ").strip().lower() != "y":
            print("not run (pass --yes to confirm non-interactively)", file=sys.stderr)
            return 1

    async def go() -> int:
        config.workspace_dir.mkdir(parents=True, exist_ok=True)
        try:
            result = await service.runner.run(skill, payload, workspace=config.workspace_dir)
        except SkillInputInvalid as exc:
            print(exc.message, file=sys.stderr)
            return 2
        except SkillError as exc:
            print(exc.message, file=sys.stderr)
            return 1
        sys.stdout.write(result.output)
        if not result.ok:
            print(f"\nfailed: {result.error}", file=sys.stderr)
            if result.stderr_tail.strip():
                print(result.stderr_tail.rstrip(), file=sys.stderr)
        return 0 if result.ok else 1

    return asyncio.run(go())


def _installer(config: NexflowConfig, index: str | None) -> Installer:
    chosen = index or config.skills.index or os.environ.get(INDEX_ENV) or None
    return Installer.at_home(config.home, index=chosen)


def _install_factory(args: argparse.Namespace) -> Installer:
    from nexflow.cli import load_or_exit

    return _installer(load_or_exit(None), getattr(args, "index", None))


def main_skills(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="nexflow skills")
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="every skill found, with why it is unavailable")
    listing.add_argument(
        "--source", action="store_true", help="where each came from: bundled, user, installed"
    )
    listing.set_defaults(func=cmd_list)
    validate = sub.add_parser("validate", help="check one skill folder or SKILL.md")
    validate.add_argument("path")
    validate.set_defaults(func=cmd_validate)
    run = sub.add_parser("run", help="run a skill directly (the owner's permissions)")
    run.add_argument("name")
    run.add_argument("--input", default="{}", help="the skill's input as JSON")
    run.add_argument("--yes", action="store_true", help="confirm a dangerous skill")
    run.set_defaults(func=cmd_run)
    install_cli.add_commands(sub, "skill")
    args = parser.parse_args(argv)
    if getattr(args, "install_cmd", None):
        return install_cli.run_command(args, _install_factory)
    return int(args.func(args))
