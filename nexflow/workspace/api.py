"""The workspace contract that chat commands, the web API and tools program against.

A workspace is a git repository; every change the AI proposes is a :class:`Patch` on a
shadow branch ``nexflow/patch/<id>`` that stays ``pending`` until the user accepts it
(merged into ``main``) or rejects it (branch deleted). ``conflict`` means the patch no
longer applies to ``main``; ``reason`` says why.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

PatchStatus = Literal["pending", "merged", "rejected", "conflict"]
PATCH_STATUSES: tuple[PatchStatus, ...] = ("pending", "merged", "rejected", "conflict")


class WorkspaceError(Exception):
    """A workspace operation was refused. ``code`` maps to an HTTP status at the edge."""

    code = "workspace_error"  # -> 400

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class NotFound(WorkspaceError):
    code = "not_found"  # -> 404


class Forbidden(WorkspaceError):
    code = "forbidden"  # -> 403: not the owner of the workspace / patch


class Stale(WorkspaceError):
    code = "stale"  # -> 409: a file edit made on a version that is not the current one


class QuotaExceeded(WorkspaceError):
    code = "quota_exceeded"  # -> 409


class NotPending(WorkspaceError):
    code = "not_pending"  # -> 409: accept/reject of a patch that is already decided


class BudgetExhausted(WorkspaceError):
    code = "budget_exhausted"  # -> 429: a sync needs background tokens and none are left


class SyncFailed(WorkspaceError):
    code = "sync_failed"  # -> 502: the model could not be reached during a sync


class SyncUnusable(SyncFailed):
    """The model answered, but nothing in the answer can become a patch (HTTP 422)."""

    code = "sync_unusable"


class Unavailable(WorkspaceError):
    # -> 503: start-up (load, recovery) failed, it is stopped, or the workspace's
    # cross-process lock could not be taken (shared_lock.py)
    code = "unavailable"


@dataclass(frozen=True, slots=True)
class Patch:
    id: str
    workspace: str  # "<user_id>/<name>"
    user_id: str  # the workspace owner, the only one who may accept or reject
    target: str  # "panel:<panel_id>" or "file:<path inside the workspace>"
    status: PatchStatus
    summary: str  # one line a person reads in chat
    branch: str  # "nexflow/patch/<id>"
    base: str  # main's commit the patch was made on (updated when rebased)
    source: str  # what made it: "sync:<panel_id>", "chat", "api"
    reason: str  # why it is in conflict (or was refused); "" otherwise
    created_at: float
    updated_at: float
    merge_commit: str = ""  # set once merged

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "workspace": self.workspace,
            "status": self.status,
            "target": self.target,
            "summary": self.summary,
            "branch": self.branch,
            "base": self.base,
            "source": self.source,
            "reason": self.reason,
            "merge_commit": self.merge_commit,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class PatchDiff:
    """What a patch changes, in the shapes a reviewer reads."""

    patch: Patch
    state_keys: tuple[str, ...]  # panel state keys changed (panel targets)
    nodes_added: tuple[str, ...]  # NXML nodes added, e.g. "Button#refresh" (panel targets)
    nodes_removed: tuple[str, ...]
    text: str  # unified diff of every file on the branch against its base
    # what the hooks' checks found in the patched file (a flow that does not load), one
    # line each; () when nothing is wrong (file targets only, see PatchHooks)
    problems: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            **self.patch.to_json(),
            "state_keys": list(self.state_keys),
            "nodes_added": list(self.nodes_added),
            "nodes_removed": list(self.nodes_removed),
            "problems": list(self.problems),
            "diff": self.text,
        }


@dataclass(frozen=True, slots=True)
class FileChange:
    """The file a ``file:<path>`` patch writes, as :class:`PatchHooks` see it: the
    workspace owner, whether it is their default workspace, the path and the new text
    (for ``merged``: the text main has after the accept)."""

    user_id: str
    default_workspace: bool
    path: str
    text: str


FileCheck = Callable[[FileChange], Sequence[str]]
FileMerged = Callable[[FileChange], Awaitable[None]]
# Told of every patch event: "proposed", "merged", "conflict" or "rejected", and the patch
# as it is then (GraphStudio's live patch list and cards).
PatchNotice = Callable[[str, "Patch"], None]


@dataclass
class PatchHooks:
    """What other layers add to file patches, registered by the composition root (the
    flows add theirs for ``flows/*.yaml``). ``checks`` run (in a worker thread) when a
    patch's diff is read: the problems they return go into :attr:`PatchDiff.problems`,
    so the review says what is wrong before anyone accepts; they never refuse a patch.
    ``merged`` runs after an accept put the file on main (outside the workspace lock).
    A hook that raises is logged with its traceback and fails neither the review nor the
    accept. ``notices`` hear every proposal and decision (synchronously; they must not
    block)."""

    checks: list[FileCheck] = field(default_factory=list)
    merged: list[FileMerged] = field(default_factory=list)
    notices: list[PatchNotice] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CommitInfo:
    sha: str
    message: str
    author: str
    at: float

    def to_json(self) -> dict[str, Any]:
        return {"sha": self.sha, "message": self.message, "author": self.author, "at": self.at}


class GraphContext(Protocol):
    """The Nexus Object Graph as the model reads it (nexflow/workspace/nog.py)."""

    def to_context(self, focus: str | None = None) -> str: ...


class Workspaces(Protocol):
    """What the chat commands and the web routes need of the workspace layer."""

    async def sync(self, user_id: str, panel_id: str) -> list[Patch]:
        """Explicit sync from one panel: the patches it created (possibly none), all in
        the workspace the panel belongs to."""
        ...

    async def propose(
        self,
        user_id: str,
        target: str,
        content: str,
        summary: str,
        source: str,
        workspace: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Patch:
        """A patch replacing ``target``'s content (panel state JSON, NXML or file text).

        A ``panel:<id>`` patch lives in the workspace the panel belongs to (which must be
        ``workspace`` when one is given); a ``file:<path>`` patch in ``workspace`` (the
        default one when None; a named one must exist). ``idempotency_key`` (a flow
        step's): the same user and key give the same patch, proposed once."""
        ...

    async def patches(
        self, user_id: str | None = None, status: PatchStatus | None = None
    ) -> list[Patch]: ...

    async def diff(self, patch_id: str) -> PatchDiff: ...

    async def accept(self, patch_id: str, user_id: str) -> Patch:
        """Merge into main (rebasing first if main moved); ``conflict`` if it cannot."""
        ...

    async def reject(self, patch_id: str, user_id: str) -> Patch: ...

    async def history(self, user_id: str, panel_id: str, limit: int = 50) -> list[CommitInfo]:
        """The panel's commits on main of its workspace, newest first."""
        ...

    async def restore(self, user_id: str, panel_id: str, sha: str) -> CommitInfo:
        """Bring a panel back to its version at ``sha`` as a new commit on main."""
        ...

    async def nog(self, user_id: str, name: str | None = None) -> GraphContext:
        """The workspace's object graph (the default workspace when ``name`` is None)."""
        ...
