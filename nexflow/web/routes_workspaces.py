"""The caller's workspaces and the layout of their panels (GraphStudio).

- ``GET /api/v1/workspaces`` — ``[{"name", "default", "panels"}]``
- ``POST /api/v1/workspaces`` ``{"name"}`` — 201, a new (empty) workspace
- ``GET /api/v1/workspaces/{ws}/layout`` — the :class:`Layout` (a default one when none
  was saved: every panel of the workspace in one area)
- ``PUT /api/v1/workspaces/{ws}/layout`` — validated, saved as ``.nexflow/layout.json``
  in the workspace's git repository and committed, so layout changes are versioned too

A workspace is the caller's own: another user's name simply does not exist for them
(their repositories live under their own user id). Contract: docs/graphstudio/workspace.md.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Literal, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nexflow.panels.runtime.errors import WorkspaceNameInvalid
from nexflow.panels.runtime.versions import check_workspace
from nexflow.web.app import WebServices, error_body, refusal
from nexflow.web.events import LayoutUpdated
from nexflow.web.identity import web_user
from nexflow.workspace.api import WorkspaceError

if TYPE_CHECKING:
    from nexflow.workspace.api import CommitInfo

router = APIRouter()
STATUS = {"not_found": 404, "quota_exceeded": 409, "unavailable": 503}  # else 400
LAYOUT_PATH = ".nexflow/layout.json"
MAX_AREAS = 8


class WorkspaceStore(Protocol):
    """What these routes need of :class:`~nexflow.workspace.service.WorkspaceService`."""

    async def workspaces(self, user_id: str) -> list[str]: ...

    async def create_workspace(self, user_id: str, name: str) -> str: ...

    async def read_file(
        self, user_id: str, path: str, *, name: str | None = None
    ) -> str | None: ...

    async def write_file(
        self, user_id: str, path: str, text: str, *, name: str | None = None
    ) -> CommitInfo: ...


class WorkspaceOut(BaseModel):
    name: str
    default: bool
    panels: int


class NewWorkspace(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=32, description="1-32 lowercase letters, digits, - or _")


class Area(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
    panels: list[str] = Field(default_factory=list, max_length=64)
    active: str | None = None
    size: float = Field(1.0, ge=0.1, le=1.0, description="Share of the width (tile mode)")

    @model_validator(mode="after")
    def _active_is_shown(self) -> Area:
        if self.active is not None and self.active not in self.panels:
            raise ValueError(f"area {self.id!r}: the active panel {self.active!r} is not in it")
        return self


class Layout(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    mode: Literal["tile", "tabs"] = "tile"
    areas: list[Area] = Field(default_factory=list, max_length=MAX_AREAS)

    @model_validator(mode="after")
    def _each_panel_once(self) -> Layout:
        seen: set[str] = set()
        ids: set[str] = set()
        for area in self.areas:
            if area.id in ids:
                raise ValueError(f"two areas are called {area.id!r}")
            ids.add(area.id)
            for panel in area.panels:
                if panel in seen:
                    raise ValueError(f"panel {panel!r} is in more than one place")
                seen.add(panel)
        return self

    def panel_ids(self) -> list[str]:
        return [p for a in self.areas for p in a.panels]

    def keeping(self, known: set[str]) -> Layout:
        """A copy without the panels not in ``known`` (deleted since it was saved)."""
        areas = []
        for area in self.areas:
            panels = [p for p in area.panels if p in known]
            active = area.active if area.active in panels else (panels[0] if panels else None)
            areas.append(area.model_copy(update={"panels": panels, "active": active}))
        return self.model_copy(update={"areas": areas})


def _services(request: Request) -> WebServices:
    svc: WebServices = request.app.state.services
    return svc


def _default_name(svc: WebServices) -> str:
    config = svc.nexflow_config
    return config.workspaces.default_name if config is not None else "default"


async def _files(svc: WebServices) -> WorkspaceStore | None:
    """The workspace service (the lazy holder's, once loaded); None when disabled."""
    holder = svc.workspaces
    if holder is None:
        return None
    service = getattr(holder, "service", None)
    found: WorkspaceStore = await service() if callable(service) else holder  # type: ignore[assignment]
    return found  # the WorkspaceService behind the Workspaces protocol


def _panels_of(svc: WebServices, owner: str, workspace: str) -> list[str]:
    if svc.panels is None:
        return []
    return [r.id for r in svc.panels.instances(owner) if r.workspace == workspace]


async def _names(svc: WebServices, files: WorkspaceStore | None, owner: str) -> list[str]:
    names = {_default_name(svc)}
    if files is not None:
        names.update(await files.workspaces(owner))
    if svc.panels is not None:
        names.update(r.workspace for r in svc.panels.instances(owner))
    return sorted(names)


def _not_found(name: str) -> JSONResponse:
    return JSONResponse(error_body("not_found", f"There is no workspace {name!r}."), 404)


def _unavailable() -> JSONResponse:
    return JSONResponse(
        error_body("unavailable", "Workspaces are not enabled in this gateway."), 503
    )


@router.get("/api/v1/workspaces", response_model=list[WorkspaceOut])
async def list_workspaces(request: Request) -> list[WorkspaceOut] | JSONResponse:
    svc = _services(request)
    owner = await web_user(request)
    try:
        names = await _names(svc, await _files(svc), owner)
    except WorkspaceError as exc:
        return refusal(exc, STATUS)
    default = _default_name(svc)
    return [
        WorkspaceOut(name=n, default=n == default, panels=len(_panels_of(svc, owner, n)))
        for n in names
    ]


@router.post("/api/v1/workspaces", status_code=201, response_model=WorkspaceOut)
async def create_workspace(body: NewWorkspace, request: Request) -> WorkspaceOut | JSONResponse:
    svc = _services(request)
    owner = await web_user(request)
    try:
        name = check_workspace(body.name)
    except WorkspaceNameInvalid as exc:
        return JSONResponse(error_body(exc.code, exc.message), 422)
    try:
        files = await _files(svc)
        if files is None:
            return _unavailable()
        if name in await _names(svc, files, owner):
            return JSONResponse(
                error_body("exists", f"You already have a workspace {name!r}."), 409
            )
        await files.create_workspace(owner, name)
    except WorkspaceError as exc:
        return refusal(exc, STATUS)
    return WorkspaceOut(name=name, default=name == _default_name(svc), panels=0)


@router.get("/api/v1/workspaces/{workspace}/layout", response_model=Layout)
async def get_layout(workspace: str, request: Request) -> Layout | JSONResponse:
    svc = _services(request)
    owner = await web_user(request)
    try:
        files = await _files(svc)
        if workspace not in await _names(svc, files, owner):
            return _not_found(workspace)
        panels = _panels_of(svc, owner, workspace)
        raw = await files.read_file(owner, LAYOUT_PATH, name=workspace) if files else None
    except WorkspaceError as exc:
        return refusal(exc, STATUS)
    return _parse_saved(raw, panels)


def _parse_saved(raw: str | None, panels: list[str]) -> Layout:
    """The saved layout without panels deleted since; every panel in one area when none
    was saved (or the file no longer parses: it is also in git history)."""
    if raw:
        try:
            return Layout.model_validate_json(raw).keeping(set(panels))
        except ValidationError:
            pass
    area = Area(id="main", panels=panels, active=panels[0] if panels else None)
    return Layout(areas=[area])


@router.put("/api/v1/workspaces/{workspace}/layout", response_model=Layout)
async def put_layout(workspace: str, body: Layout, request: Request) -> Layout | JSONResponse:
    svc = _services(request)
    owner = await web_user(request)
    try:
        files = await _files(svc)
        if files is None:
            return _unavailable()
        if workspace not in await _names(svc, files, owner):
            return _not_found(workspace)
        known = set(_panels_of(svc, owner, workspace))
        unknown = [p for p in body.panel_ids() if p not in known]
        if unknown:
            message = (
                f"Workspace {workspace!r} has no panel {', '.join(map(repr, unknown))}; "
                "lay out only the panels listed by GET /api/v1/panels for this workspace."
            )
            return JSONResponse(error_body("unknown_panel", message), 422)
        text = json.dumps(body.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"
        if await files.read_file(owner, LAYOUT_PATH, name=workspace) != text:
            await files.write_file(owner, LAYOUT_PATH, text, name=workspace)
            if svc.events is not None:
                svc.events.publish(owner, LayoutUpdated(workspace=workspace))
    except WorkspaceError as exc:
        return refusal(exc, STATUS)
    return body
