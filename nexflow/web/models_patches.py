"""The answers of the patch and panel-history routes (:mod:`nexflow.web.routes_patches`),
field for field what :meth:`Patch.to_json`, :meth:`PatchDiff.to_json` and
:meth:`CommitInfo.to_json` (nexflow/workspace/api.py) write, in their order."""

from __future__ import annotations

from pydantic import BaseModel, Field

from nexflow.web.models_common import ErrorDetail
from nexflow.workspace.api import CommitInfo, Patch, PatchDiff, PatchStatus


class PatchOut(BaseModel):
    """A workspace patch (``Patch.to_json()``)."""

    id: str
    workspace: str = Field(description='"<user_id>/<name>"')
    status: PatchStatus
    target: str = Field(description='"panel:<panel_id>" or "file:<path in the workspace>"')
    summary: str = Field(description="One line a person reads in chat")
    branch: str = Field(description='"nexflow/patch/<id>"')
    base: str = Field(description="Main's commit the patch was made on")
    source: str = Field(description='What made it: "sync:<panel_id>", "chat", "api"')
    reason: str = Field(description='Why it is in conflict (or was refused); "" otherwise')
    merge_commit: str = Field(description='Set once merged; "" before')
    created_at: float
    updated_at: float

    @classmethod
    def of(cls, patch: Patch) -> PatchOut:
        return cls.model_validate(patch.to_json())


class PatchDiffOut(PatchOut):
    """One patch with what it changes (``PatchDiff.to_json()``)."""

    state_keys: list[str] = Field(description="Panel state keys changed (panel targets)")
    nodes_added: list[str] = Field(description='NXML nodes added, e.g. "Button#refresh"')
    nodes_removed: list[str]
    problems: list[str] = Field(description="What the checks found in the patched file")
    diff: str = Field(description="Unified diff of every file on the branch against its base")

    @classmethod
    def of_diff(cls, diff: PatchDiff) -> PatchDiffOut:
        return cls.model_validate(diff.to_json())


class SyncResult(BaseModel):
    """``POST /api/v1/panels/{id}/sync``: the patches the sync made, one per target."""

    panel: str
    patches: list[PatchOut]


class PanelCommit(BaseModel):
    """A commit of a panel's history (``CommitInfo.to_json()``)."""

    sha: str
    message: str
    author: str = Field(description="The git author: a user id, or nexflow-ai for a patch")
    at: float = Field(description="Unix time of the commit")

    @classmethod
    def of(cls, commit: CommitInfo) -> PanelCommit:
        return cls.model_validate(commit.to_json())


class WorkspaceErrorDetail(ErrorDetail):
    hint: str | None = Field(None, description="What to do about it (only when there is a hint)")


class WorkspaceErrorBody(BaseModel):
    """``{"error": {"code", "message", "hint"?}}``: a refused workspace operation."""

    error: WorkspaceErrorDetail
