"""Workspace patches and panel history over HTTP, and the patch review page (``/patches``).

- ``GET /api/v1/patches?status=pending`` — the caller's patches (``id``, ``status``,
  ``target``, ``summary``, …), newest first
- ``GET /api/v1/patches/{id}`` — one patch with its full diff
- ``POST /api/v1/patches/{id}/accept`` / ``.../reject`` — answer the patch with its new status
- ``POST /api/v1/panels/{id}/sync`` — explicit sync; ``{"patches": [...]}`` it created
- ``GET /api/v1/panels/{id}/history`` — the panel's commits, newest first
- ``POST /api/v1/panels/{id}/restore`` ``{"sha": ...}`` — bring a version back (a new commit)

Requests act as the web owner, like the rest of the API (the gateway token is the owner's).
A refused operation answers ``{"error": {"code", "message", "hint"}}`` with 404 (unknown),
403 (someone else's), 409 (already decided, quota), 429 (no token budget left for a sync),
422 ``sync_unusable`` (the model's answer could not be used: what was wrong is in the
message), 502 (the model could not be reached during a sync) or 400.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nexflow.web.app import WebServices, error_body, refusal
from nexflow.web.identity import web_user
from nexflow.web.models_common import INVALID_REQUEST, error
from nexflow.web.models_patches import (
    PanelCommit,
    PatchDiffOut,
    PatchOut,
    SyncResult,
    WorkspaceErrorBody,
)
from nexflow.workspace.api import (
    PATCH_STATUSES,
    Forbidden,
    PatchStatus,
    WorkspaceError,
    Workspaces,
)

router = APIRouter()
PAGE = "patches.html"
HTTP_STATUS = {  # WorkspaceError.code → status; anything else is 400
    "not_found": 404,
    "forbidden": 403,
    "not_pending": 409,
    "quota_exceeded": 409,
    "budget_exhausted": 429,
    "sync_failed": 502,  # the model could not be reached
    "sync_unusable": 422,  # it answered, but nothing usable (sync_reply.py)
    "unavailable": 503,  # the workspace layer failed to start (the log has why)
}


def _refused(description: str) -> dict[str, Any]:
    return error(description, WorkspaceErrorBody)


NOT_FOUND = _refused("not_found: no such patch or panel")
FORBIDDEN = _refused("forbidden: someone else's")
UNAVAILABLE = _refused("unavailable: the workspace layer is not running")
DECIDE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: NOT_FOUND,
    403: FORBIDDEN,
    409: _refused("not_pending: already decided"),
    422: INVALID_REQUEST,
    503: UNAVAILABLE,
}


class Restore(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sha: str = Field(min_length=4, max_length=64, pattern=r"^[0-9a-fA-F]+$")


def _svc(request: Request) -> tuple[Workspaces, WebServices]:
    svc: WebServices = request.app.state.services
    if svc.workspaces is None:  # routes are only installed with workspaces on
        raise WorkspaceError("workspaces are not enabled in this gateway")
    return svc.workspaces, svc


@router.get(
    "/api/v1/patches",
    response_model=list[PatchOut],
    responses={422: INVALID_REQUEST, 503: UNAVAILABLE},
)
async def list_patches(
    request: Request, status: str | None = None
) -> list[PatchOut] | JSONResponse:
    """The caller's patches, newest first (``status`` filters)."""
    workspaces, _ = _svc(request)
    if status is not None and status not in PATCH_STATUSES:
        known = "|".join(PATCH_STATUSES)
        return JSONResponse(error_body("invalid_request", f"status must be one of {known}"), 422)
    chosen: PatchStatus | None = next((s for s in PATCH_STATUSES if s == status), None)
    patches = await workspaces.patches(await web_user(request), chosen)
    return [PatchOut.of(p) for p in patches]


@router.get(
    "/api/v1/patches/{patch_id}",
    response_model=PatchDiffOut,
    responses={404: NOT_FOUND, 403: FORBIDDEN, 422: INVALID_REQUEST, 503: UNAVAILABLE},
)
async def get_patch(patch_id: str, request: Request) -> PatchDiffOut:
    """One patch with its full diff."""
    workspaces, _ = _svc(request)
    diff = await workspaces.diff(patch_id)
    if diff.patch.user_id != await web_user(request):
        raise Forbidden(f"patch {patch_id} belongs to another user")
    return PatchDiffOut.of_diff(diff)


@router.post("/api/v1/patches/{patch_id}/accept", response_model=PatchOut, responses=DECIDE_ERRORS)
async def accept(patch_id: str, request: Request) -> PatchOut:
    """Merge into main; ``status`` is ``merged``, or ``conflict`` with a ``reason``."""
    workspaces, _ = _svc(request)
    return PatchOut.of(await workspaces.accept(patch_id, await web_user(request)))


@router.post("/api/v1/patches/{patch_id}/reject", response_model=PatchOut, responses=DECIDE_ERRORS)
async def reject(patch_id: str, request: Request) -> PatchOut:
    """Reject the patch; ``status`` is ``rejected``."""
    workspaces, _ = _svc(request)
    return PatchOut.of(await workspaces.reject(patch_id, await web_user(request)))


@router.post(
    "/api/v1/panels/{panel_id}/sync",
    response_model=SyncResult,
    responses={
        404: NOT_FOUND,
        403: FORBIDDEN,
        409: _refused("quota_exceeded: too many pending patches"),
        422: _refused("sync_unusable: the model's answer could not be used (the message says why)"),
        429: _refused("budget_exhausted: no token budget left for a sync"),
        502: _refused("sync_failed: the model could not be reached"),
        503: UNAVAILABLE,
    },
)
async def sync(panel_id: str, request: Request) -> SyncResult:
    """Ask the model what this panel's changes mean elsewhere; one patch per target."""
    workspaces, _ = _svc(request)
    patches = await workspaces.sync(await web_user(request), panel_id)
    return SyncResult(panel=panel_id, patches=[PatchOut.of(p) for p in patches])


@router.get(
    "/api/v1/panels/{panel_id}/history",
    response_model=list[PanelCommit],
    responses={404: NOT_FOUND, 403: FORBIDDEN, 422: INVALID_REQUEST, 503: UNAVAILABLE},
)
async def history(panel_id: str, request: Request, limit: int = 50) -> list[PanelCommit]:
    """The panel's commits, newest first."""
    workspaces, _ = _svc(request)
    commits = await workspaces.history(await web_user(request), panel_id, max(1, min(limit, 500)))
    return [PanelCommit.of(c) for c in commits]


@router.post(
    "/api/v1/panels/{panel_id}/restore",
    response_model=PanelCommit,
    responses={404: NOT_FOUND, 403: FORBIDDEN, 422: INVALID_REQUEST, 503: UNAVAILABLE},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": Restore.model_json_schema()}},
        }
    },
)
async def restore(panel_id: str, request: Request) -> PanelCommit:
    """Bring a version back (a new commit on main)."""
    workspaces, _ = _svc(request)
    try:
        body = Restore.model_validate_json(await request.body() or b"{}")
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc
    commit = await workspaces.restore(await web_user(request), panel_id, body.sha)
    return PanelCommit.of(commit)


@router.get("/patches", response_model=None, include_in_schema=False)
async def page(request: Request) -> Response:
    """The review page; it reads the token from the chat page's session storage."""
    static = request.app.state.services.static_dir
    file = static / PAGE if static else None
    if file is None or not file.is_file():
        return HTMLResponse("<h1>Patches</h1><p>The web UI is not installed.</p>", 404)
    return FileResponse(file, media_type="text/html", headers={"Cache-Control": "no-store"})


def install(app: FastAPI) -> None:
    """Add the routes and the handler that turns a :class:`WorkspaceError` into JSON."""
    app.include_router(router)

    @app.exception_handler(WorkspaceError)
    async def workspace_error(_: Request, exc: WorkspaceError) -> JSONResponse:
        return refusal(exc, HTTP_STATUS)
