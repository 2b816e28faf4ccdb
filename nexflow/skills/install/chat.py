"""``/skill install <source>`` and ``/skill verify`` in chat, for the owner only.

Install goes through a confirmation card: the plan (declared permissions, what the scan
saw, every finding) is the card's detail and nothing is installed until the owner
approves. A chat turn never waits: asking parks the turn (``ApprovalRequired``) and the
answer re-runs the command. So the plan is kept on disk between the two runs (a
``pending/<key>.json`` in quarantine) and re-used only if the quarantined files still
have the hashes they had when the card was shown; otherwise the command plans again and
asks again. Pending plans older than a day are discarded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from nexflow.skills.install.cli import show_plan
from nexflow.skills.install.errors import InstallError
from nexflow.skills.install.installer import Installer
from nexflow.skills.install.lock import hash_tree
from nexflow.skills.install.model import Finding, InstallPlan
from nexflow.skills.install.quarantine import remove_tree
from nexflow.tools.base import ToolContext

PENDING_TTL_S = 24 * 3600
USAGE = "Usage: /skill install <folder | git URL | archive | slug>, /skill verify"


class ChatInstall:
    """The ``/skill`` command. ``on_change`` runs after an install (e.g. a registry reload
    when no watcher runs)."""

    def __init__(
        self,
        installer: Installer,
        *,
        owner_role: str = "owner",
        on_change: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._installer = installer
        self._owner_role = owner_role
        self._on_change = on_change
        self._pending_dir = installer.quarantine_dir / "pending"

    async def handle(self, rest: str, ctx: ToolContext) -> str:
        if ctx.role != self._owner_role:
            return "Only the owner can install or verify skills."
        verb, _, arg = rest.strip().partition(" ")
        try:
            match verb:
                case "install" if arg.strip():
                    return await self._install(arg.strip(), ctx)
                case "verify":
                    return await asyncio.to_thread(self._verify)
                case _:
                    return USAGE
        except InstallError as e:
            return f"Not installed: {e.message}"

    def _verify(self) -> str:
        report = self._installer.verify()
        if not report:
            return "No installed skills."
        lines = []
        for name, problems in report.items():
            lines.append(f"ok {name}" if not problems else f"CHANGED {name}: {problems[0]}")
        return "\n".join(lines)

    async def _install(self, source: str, ctx: ToolContext) -> str:
        if ctx.confirm is None:
            return "This channel cannot show a confirmation; use `nexflow skills install`."
        key = hashlib.sha256(f"{ctx.user_id}\0{source}".encode()).hexdigest()[:24]
        shown, plan = await asyncio.to_thread(self._load_pending, key)
        fresh = shown is None
        if plan is None:
            plan = await asyncio.to_thread(self._plan_and_park, key, source, shown)
        if plan is None:
            return (
                "The skill changed since its confirmation card was shown; nothing was "
                "installed. Send the command again to see what it holds now."
            )
        title, detail = card(plan)
        approved = await ctx.confirm(title, detail)  # parks the turn the first time
        try:
            if fresh:
                # An answer already existed, but no record of the card it answered.
                return "That approval is for a plan no longer on record; send the command again."
            if not approved:
                return f"{plan.name} was not installed."
            done = await asyncio.to_thread(self._installer.commit, plan, approved=True)
        finally:
            await asyncio.to_thread(self._drop, key, plan)
        if self._on_change is not None:
            await self._on_change()
        return f"Installed {done.name} ({len(done.files)} file(s) locked)."

    def _plan_and_park(
        self, key: str, source: str, shown: dict[str, str] | None
    ) -> InstallPlan | None:
        """Plan and keep the plan for the answer. When a card was shown already
        (``shown``: its file hashes), the new plan must hold exactly those files."""
        self._expire()
        plan = self._installer.plan(source)
        files = hash_tree(plan.staged)
        if shown is not None and files != shown:
            self._drop(key, plan)
            return None
        self._pending_dir.mkdir(parents=True, exist_ok=True)
        record = {"plan": plan_to_json(plan), "files": files, "at": time.time()}
        (self._pending_dir / f"{key}.json").write_text(json.dumps(record), encoding="utf-8")
        return plan

    def _load_pending(self, key: str) -> tuple[dict[str, str] | None, InstallPlan | None]:
        """(the file hashes the card showed, the quarantined plan if still intact)."""
        path = self._pending_dir / f"{key}.json"
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            plan = plan_from_json(record["plan"])
            shown = {str(k): str(v) for k, v in record["files"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None, None
        root = (plan.stage_root or plan.staged).resolve()
        if not root.is_relative_to(self._installer.quarantine_dir.resolve()):
            path.unlink(missing_ok=True)  # never act on paths outside quarantine
            return None, None
        if not plan.staged.exists() or hash_tree(plan.staged) != shown:
            self._installer.discard(plan)  # changed in quarantine: fetch again, compare
            return shown, None
        return shown, plan

    def _drop(self, key: str, plan: InstallPlan) -> None:
        self._installer.discard(plan)
        (self._pending_dir / f"{key}.json").unlink(missing_ok=True)

    def _expire(self) -> None:
        if not self._pending_dir.is_dir():
            return
        now = time.time()
        for path in self._pending_dir.glob("*.json"):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
                stale = now - float(record["at"]) > PENDING_TTL_S
                plan = plan_from_json(record["plan"])
            except (OSError, ValueError, KeyError, TypeError):
                path.unlink(missing_ok=True)
                continue
            if stale:
                remove_tree(plan.stage_root or plan.staged)
                path.unlink(missing_ok=True)


def card(plan: InstallPlan) -> tuple[str, str]:
    """The confirmation card: a title and the plan as text."""
    buffer = io.StringIO()
    show_plan(plan, "skill", buffer)
    title = f"Install skill {plan.name!r}?"
    if plan.flagged:
        title = f"Install skill {plan.name!r} despite the scan's findings?"
    return title, buffer.getvalue().rstrip()


def plan_to_json(plan: InstallPlan) -> dict[str, Any]:
    data = dataclasses.asdict(plan)
    data["staged"] = str(plan.staged)
    data["stage_root"] = str(plan.stage_root) if plan.stage_root else None
    data["declared_permissions"] = sorted(plan.declared_permissions)
    data["load_warnings"] = list(plan.load_warnings)
    return data


def plan_from_json(data: dict[str, Any]) -> InstallPlan:
    return InstallPlan(
        name=str(data["name"]),
        source=str(data["source"]),
        staged=Path(data["staged"]),
        declared_permissions=frozenset(data["declared_permissions"]),
        findings=tuple(Finding(**f) for f in data["findings"]),
        load_warnings=tuple(data["load_warnings"]),
        version=data.get("version"),
        kind=str(data.get("kind", "folder")),
        folder=str(data["folder"]),
        stage_root=Path(data["stage_root"]) if data.get("stage_root") else None,
        description=str(data.get("description", "")),
        index=data.get("index"),
    )
