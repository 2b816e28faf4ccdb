"""The install commands shared by ``nexflow skills`` and ``nexflow panels``:
``install SOURCE [--yes] [--index]``, ``verify [NAME]``, ``update NAME [--yes]``,
``remove NAME``.

Approval: ``--yes`` approves non-interactively; otherwise a terminal is asked (a flagged
item only by typing its name); with no terminal and no ``--yes`` nothing is installed.
Exit status: 0 done, 1 refused, declined or failed, 2 bad usage. Never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TextIO

from nexflow.skills.install.errors import InstallError
from nexflow.skills.install.installer import BaseInstaller, finding_keys
from nexflow.skills.install.lock import LockEntry, hash_tree
from nexflow.skills.install.model import InstalledSkill, InstallPlan

InstallerFactory = Callable[[argparse.Namespace], BaseInstaller]
Ask = Callable[[str], str]


def _observed(plan: InstallPlan) -> list[str]:
    """What the scan saw the item do, in permission words, next to what it declares."""
    seen = set()
    for f in plan.findings:
        if f.rule in ("network-use", "undeclared-network"):
            seen.add("network")
        elif f.rule in ("credential-read", "dotenv-read"):
            seen.add("secrets")
        elif f.rule in ("pipe-to-shell", "encoded-exec", "bundled-binary"):
            seen.add("shell")
    return sorted(seen)


def show_plan(plan: InstallPlan, noun: str, out: TextIO) -> None:
    print(f"{noun} {plan.name!r} from {plan.source} ({plan.kind})", file=out)
    if plan.version:
        print(f"  version:     {plan.version}", file=out)
    if plan.description:
        print(f"  description: {plan.description[:200]}", file=out)
    declared = ", ".join(sorted(plan.declared_permissions)) or "none"
    observed = ", ".join(_observed(plan)) or "nothing notable"
    print(f"  declares:    {declared}", file=out)
    print(f"  scan saw:    {observed}", file=out)
    for warning in plan.load_warnings:
        print(f"  warning: {warning}", file=out)
    if plan.findings:
        print(f"  findings ({len(plan.findings)}):", file=out)
        for f in plan.findings:
            print(f"    {f.render()}", file=out)
    else:
        print("  findings:    none", file=out)


def approve(plan: InstallPlan, *, yes: bool, ask: Ask | None, what: str, out: TextIO) -> bool:
    """True when the user approves ``what`` (install/update) of ``plan``."""
    if yes:
        if plan.flagged:
            print("approved with --yes despite the findings above", file=out)
        return True
    if ask is None:
        print(
            f"not {what}ed: no terminal to ask for approval; review the findings above and "
            "pass --yes to approve non-interactively",
            file=sys.stderr,
        )
        return False
    if plan.flagged:
        answer = ask(f"The scan flagged {plan.name!r}. Type its name to {what} it anyway: ")
        return answer.strip() == plan.name
    return ask(f"{what.capitalize()} {plan.name!r}? [y/N] ").strip().lower() in ("y", "yes")


def terminal_ask() -> Ask | None:
    return input if sys.stdin.isatty() else None


def cmd_install(args: argparse.Namespace, installer: BaseInstaller, ask: Ask | None) -> int:
    plan = installer.plan(args.source, index=getattr(args, "index", None))
    done = _review_and_commit(args, installer, ask, plan, ("install", "installed"))
    if done is None:
        return 1
    print(f"installed {done.name} into {done.path} ({len(done.files)} file(s) locked)")
    return 0


def _review_and_commit(
    args: argparse.Namespace,
    installer: BaseInstaller,
    ask: Ask | None,
    plan: InstallPlan,
    what: tuple[str, str],
    changes: Callable[[], list[str]] | None = None,
) -> InstalledSkill | None:
    """Show ``plan`` (and its ``changes``), ask, commit; None when not approved. The
    staged copy is discarded either way."""
    verb, past = what
    try:
        show_plan(plan, installer.noun, sys.stdout)
        if changes is not None:
            print("changes since install:")
            for line in changes():
                print(f"  {line}")
        if not approve(plan, yes=args.yes, ask=ask, what=verb, out=sys.stdout):
            print(f"{plan.name} was not {past}", file=sys.stderr)
            return None
        return installer.commit(plan, approved=True)
    finally:
        installer.discard(plan)


def update_diff(plan: InstallPlan, entry: LockEntry) -> list[str]:
    old_keys = set(entry.approved_findings)
    new_keys = set(finding_keys(plan.findings))
    lines = []
    if (entry.version or "") != (plan.version or ""):
        lines.append(f"version: {entry.version or '?'} → {plan.version or '?'}")
    added = sorted(plan.declared_permissions - set(entry.permissions))
    dropped = sorted(set(entry.permissions) - plan.declared_permissions)
    if added:
        lines.append(f"new permissions: {', '.join(added)}")
    if dropped:
        lines.append(f"permissions no longer asked: {', '.join(dropped)}")
    lines += [f"new finding: {k}" for k in sorted(new_keys - old_keys)]
    lines += [f"finding gone: {k}" for k in sorted(old_keys - new_keys)]
    files = hash_tree(plan.staged)
    changed = [f for f in files if entry.files.get(f) != files[f]]
    removed = [f for f in entry.files if f not in files]
    if changed or removed:
        lines.append(f"files changed or added: {len(changed)}, removed: {len(removed)}")
    return lines or ["no changes"]


def cmd_update(args: argparse.Namespace, installer: BaseInstaller, ask: Ask | None) -> int:
    plan, entry = installer.plan_update(args.name)
    done = _review_and_commit(
        args, installer, ask, plan, ("update", "updated"), lambda: update_diff(plan, entry)
    )
    if done is None:
        return 1
    print(f"updated {done.name} in {done.path}")
    return 0


def cmd_verify(args: argparse.Namespace, installer: BaseInstaller) -> int:
    report = installer.verify(args.name)
    if not report:
        print(f"no installed {installer.noun}s in {installer.lock_path}")
        return 0
    bad = 0
    for name, problems in report.items():
        if not problems:
            print(f"ok       {name}")
            continue
        bad += 1
        print(f"CHANGED  {name}")
        for problem in problems:
            print(f"         {problem}")
    if bad:
        print(f"\n{bad} of {len(report)} {installer.noun}(s) differ from {installer.lock_path}")
    return 1 if bad else 0


def cmd_remove(args: argparse.Namespace, installer: BaseInstaller) -> int:
    folder = installer.remove(args.name)
    print(f"removed {args.name} ({folder})")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], noun: str) -> None:
    """Add install, verify, update and remove to a subcommand group."""
    install = sub.add_parser("install", help=f"verified install of a {noun} (quarantine + scan)")
    install.add_argument("source", help="a folder, git URL, .zip/.tar.gz archive or index slug")
    install.add_argument("--yes", action="store_true", help="approve non-interactively")
    install.add_argument("--index", help="index JSON file or URL for slugs")
    install.set_defaults(install_cmd="install")
    verify = sub.add_parser("verify", help=f"check installed {noun}s against the lock")
    verify.add_argument("name", nargs="?")
    verify.set_defaults(install_cmd="verify")
    update = sub.add_parser("update", help=f"re-install a {noun} from its recorded source")
    update.add_argument("name")
    update.add_argument("--yes", action="store_true", help="approve non-interactively")
    update.set_defaults(install_cmd="update")
    remove = sub.add_parser("remove", help=f"remove an installed {noun}")
    remove.add_argument("name")
    remove.set_defaults(install_cmd="remove")


def run_command(args: argparse.Namespace, factory: InstallerFactory) -> int:
    """Run the install command ``args`` names; errors become one line on stderr."""
    try:
        installer = factory(args)
        ask = terminal_ask()
        match args.install_cmd:
            case "install":
                return cmd_install(args, installer, ask)
            case "update":
                return cmd_update(args, installer, ask)
            case "verify":
                return cmd_verify(args, installer)
            case _:
                return cmd_remove(args, installer)
    except InstallError as e:
        print(f"nexflow: {e.message}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, EOFError):
        print("\nstopped; nothing was installed or removed", file=sys.stderr)
        return 130
