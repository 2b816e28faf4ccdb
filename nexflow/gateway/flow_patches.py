"""Flow files the AI changes arrive as patches (``docs/flows.md``, "Changes by the AI
arrive as patches").

The model has no tool that writes a flow: it proposes ``file:flows/<name>.yaml`` with
``patch_propose`` like any other workspace file, and the patch waits on its shadow
branch, so the flow list, runs and cron triggers still see ``main``'s version. Two
:class:`~nexflow.workspace.api.PatchHooks` (registered by ``nexflow/app.py``) make such
a patch a flow change:

- :meth:`FlowPatches.check`: the review (chat card, ``GET /api/v1/patches/{id}``, the
  ``/patches`` page, the tool's answer to the model) says when the proposed text is not
  a valid flow, with the loader's ``file:line:col: message``; accepting it anyway lists
  the flow with its errors (the others are listed as before) and it cannot run;
- :meth:`FlowPatches.merged`: once the owner accepted, their flows are listed again,
  which brings their cron triggers in line with the files (scheduled, changed or, for a
  file that no longer loads, kept but refused at fire time, as for any invalid file).

Only ``flows/*.yaml`` of the owner's **default** workspace are flows; other files and
other workspaces pass untouched.
"""

from __future__ import annotations

import re

import structlog

from nexflow.flows.errors import FlowError, FlowInvalid
from nexflow.flows.loader import load_flow_text
from nexflow.flows.model import FLOW_NAME
from nexflow.gateway.flows import FlowService
from nexflow.workspace.api import FileChange, PatchHooks, WorkspaceError

log = structlog.get_logger("nexflow.flows")
FLOW_FILE = re.compile(r"^flows/([^/]+)\.yaml$")
MAX_PROBLEMS = 10


def flow_name(change: FileChange) -> str | None:
    """The flow a changed file is, or None when it is not a flow file."""
    found = FLOW_FILE.match(change.path) if change.default_workspace else None
    return found.group(1) if found else None


def flow_problems(path: str, name: str, text: str) -> list[str]:
    """Why ``text`` would not be a valid ``flows/<name>.yaml``, one line per issue, each
    with the loader's ``file:line:col``; [] when it loads (the checks ``save_flow`` makes)."""
    if not re.match(FLOW_NAME, name):
        return [f"not a valid flow: {path}:0:0: name: use a-z, 0-9, '-' or '_'"]
    try:
        flow = load_flow_text(text, path)
    except FlowInvalid as exc:
        issues = [f"not a valid flow: {issue}" for issue in exc.issues]
        if len(issues) > MAX_PROBLEMS:
            more = len(issues) - MAX_PROBLEMS
            issues = [*issues[:MAX_PROBLEMS], f"… and {more} more"]
        return issues
    if flow.name != name:
        return [
            f"not a valid flow: {path}:1:1: name: '{flow.name}' must match the file name '{name}'"
        ]
    return []


class FlowPatches:
    """The flows' patch hooks; :meth:`register` adds them to the workspace layer's."""

    def __init__(self, flows: FlowService) -> None:
        self._flows = flows

    def register(self, hooks: PatchHooks) -> None:
        hooks.checks.append(self.check)
        hooks.merged.append(self.merged)

    def check(self, change: FileChange) -> list[str]:
        name = flow_name(change)
        return [] if name is None else flow_problems(change.path, name, change.text)

    async def merged(self, change: FileChange) -> None:
        name = flow_name(change)
        if name is None:
            return
        try:
            listed = await self._flows.list_flows(change.user_id)  # reschedules triggers
        except (FlowError, WorkspaceError) as exc:  # flows off: the next list catches up
            log.info("flow_patch_not_rescheduled", flow=name, reason=exc.message)
            return
        valid = any(f.name == name and f.valid for f in listed)
        log.info("flow_patch_accepted", user=change.user_id, flow=name, valid=valid)
