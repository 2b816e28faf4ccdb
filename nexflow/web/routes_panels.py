"""HTTP endpoints of the panel runtime (contract in ``docs/panels.md``)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, FastAPI, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nexflow.bus.events import PanelSnapshotOut
from nexflow.panels.runtime import (
    GrantInvalid,
    PanelInvalid,
    PanelNotFound,
    PanelRuntimeError,
    PanelService,
    SandboxUnavailable,
    TemplateNotFound,
    VersionNotFound,
    WorkspaceNameInvalid,
)
from nexflow.panels.runtime.html import preview_page
from nexflow.panels.runtime.store import StaleVersion
from nexflow.web.app import WebServices, error_body
from nexflow.web.identity import caller_of, web_user
from nexflow.web.models_common import INVALID_REQUEST, error
from nexflow.web.models_panels import (
    INVALID,
    PANEL_ERRORS,
    UNAVAILABLE,
    Capabilities,
    PanelDetail,
    PanelErrorBody,
    PanelSummary,
    PanelTemplate,
    PanelVersion,
    Pressed,
    ToolOutcome,
)

router = APIRouter()
_STATUS: tuple[tuple[type[PanelRuntimeError], int], ...] = (
    (PanelNotFound, 404),
    (TemplateNotFound, 404),
    (VersionNotFound, 404),
    (PanelInvalid, 422),
    (GrantInvalid, 422),
    (WorkspaceNameInvalid, 422),
    (StaleVersion, 409),
    (SandboxUnavailable, 503),
)


def panels(request: Request) -> PanelService:
    svc: WebServices = request.app.state.services
    if svc.panels is None:
        raise SandboxUnavailable("panels are not enabled in this gateway")
    return svc.panels


async def owned(request: Request, panel_id: str) -> PanelService:
    """The service, once the caller is known to own ``panel_id`` (another user's panel is
    404, exactly like a missing one)."""
    service = panels(request)
    service.owned(panel_id, await web_user(request))
    return service


async def _body(request: Request, model: type[BaseModel]) -> Any:
    raw = await request.body()
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc


class CreatePanel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: str | None = Field(None, max_length=64, description="A bundled template name")
    nxml: str | None = Field(None, description="NXML source of the panel")
    grants: list[str] = Field(default_factory=list, description="Capability grants")
    workspace: str | None = Field(
        None, max_length=64, description="The owner's workspace (default: the default one)"
    )

    @model_validator(mode="after")
    def _one_source(self) -> CreatePanel:
        if (self.template is None) == (self.nxml is None):
            raise ValueError('send either {"template": "<name>"} or {"nxml": "<source>"}')
        return self


class Rollback(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)


class Grants(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grants: list[str]


class Press(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: str = Field(max_length=256)


def _fields(service: PanelService, panel_id: str) -> dict[str, Any]:
    r = service.get(panel_id)
    return {
        "id": r.id,
        "title": r.title,
        "template": r.template,
        "version": r.version,
        "workspace": r.workspace,
        "state": r.state,
        "tools": [t.spec.name for t in service.tools_of(panel_id)],
        "created_at": r.created_at,
        "updated_at": r.updated_at,
    }


def _summary(service: PanelService, panel_id: str) -> PanelSummary:
    return PanelSummary.model_validate(_fields(service, panel_id))


@router.get(
    "/api/v1/panel-templates", response_model=list[PanelTemplate], responses={503: UNAVAILABLE}
)
async def list_templates(request: Request) -> list[PanelTemplate]:
    return [PanelTemplate.model_validate(t) for t in panels(request).templates()]


@router.get(
    "/api/v1/panels",
    response_model=list[PanelSummary],
    responses={
        403: error("?all=true from a caller who is not the owner"),
        422: INVALID_REQUEST,
        503: UNAVAILABLE,
    },
)
async def list_panels(request: Request, all: bool = False) -> list[PanelSummary] | JSONResponse:
    """The caller's panels; the owner adds ``?all=true`` for everyone's (the admin view)."""
    service = panels(request)
    if all and caller_of(request).role != "owner":
        return JSONResponse(error_body("forbidden", "Only the owner sees everyone's."), 403)
    owner = None if all else await web_user(request)
    return [_summary(service, r.id) for r in service.instances(owner)]


@router.post(
    "/api/v1/panels",
    status_code=201,
    response_model=PanelSummary,
    responses={
        404: error("No such template", PanelErrorBody),
        409: error("A workspace quota refused it", PanelErrorBody),
        422: INVALID,
        503: UNAVAILABLE,
    },
)
async def create_panel(request: Request) -> PanelSummary:
    """Create an instance from ``{"template": name}`` or ``{"nxml": source}``, in
    ``"workspace"`` of the web user when given (created on first use)."""
    service = panels(request)
    body: CreatePanel = await _body(request, CreatePanel)
    # Owned by the web user, like panels opened from the web chat, so that the workspace
    # routes (sync, history, restore), which act as the web user, reach them.
    owner = await web_user(request)
    record = await service.create(
        template=body.template, nxml=body.nxml, owner=owner, workspace=body.workspace
    )
    if body.grants:
        await service.grant(record.id, body.grants)
    return _summary(service, record.id)


@router.get("/api/v1/panels/{panel_id}", response_model=PanelDetail, responses=PANEL_ERRORS)
async def get_panel(panel_id: str, request: Request) -> PanelDetail:
    service = await owned(request, panel_id)
    rendered = await service.render(panel_id)
    return PanelDetail.model_validate(
        {
            **_fields(service, panel_id),
            "view": rendered.record.view,
            "render": rendered.tree,
            "binding_errors": list(rendered.binding_errors),
            "capabilities": service.capabilities(panel_id),
        }
    )


@router.delete("/api/v1/panels/{panel_id}", status_code=204, responses=PANEL_ERRORS)
async def delete_panel(panel_id: str, request: Request) -> Response:
    await (await owned(request, panel_id)).delete(panel_id)
    return Response(status_code=204)


@router.post(
    "/api/v1/panels/{panel_id}/tools/{tool}",
    response_model=ToolOutcome,
    responses={
        **PANEL_ERRORS,
        404: {
            "model": ToolOutcome | PanelErrorBody,
            "description": "No such panel, or no such tool (an outcome with ok: false)",
        },
        422: error("The body is not a JSON object"),
    },
)
async def call_tool(
    panel_id: str,
    tool: str,
    request: Request,
    response: Response,
    idempotency_key: str | None = Header(None, max_length=200),
) -> ToolOutcome | JSONResponse:
    """Run a Logic tool with the JSON body as its arguments; ``ok: false`` changes nothing.
    ``Idempotency-Key``: a retried request starts the flows it asks for once."""
    service = await owned(request, panel_id)
    raw = await request.body()
    try:
        args = json.loads(raw) if raw.strip() else {}
    except ValueError:
        args = None
    if not isinstance(args, dict):
        return JSONResponse(
            error_body(
                "invalid_request", "The body must be a JSON object of the tool's arguments."
            ),
            422,
        )
    outcome = await service.call_tool(
        panel_id,
        tool,
        args,
        triggered_by="user",
        user_id=await web_user(request),
        event_id=f"http:{idempotency_key}" if idempotency_key else None,
    )
    if outcome.error_code == "unknown_tool":
        response.status_code = 404
    return ToolOutcome.of(outcome)


@router.get(
    "/api/v1/panels/{panel_id}/snapshot", response_model=PanelSnapshotOut, responses=PANEL_ERRORS
)
async def snapshot(panel_id: str, request: Request) -> PanelSnapshotOut:
    return await (await owned(request, panel_id)).snapshot(panel_id)


@router.post(
    "/api/v1/panels/{panel_id}/press",
    response_model=Pressed,
    responses=PANEL_ERRORS,
)
async def press(
    panel_id: str, request: Request, idempotency_key: str | None = Header(None, max_length=200)
) -> Pressed:
    """Press a snapshot button (``{"action": "panel:<id>:<key>"}``) as a chat callback would;
    ``Idempotency-Key``: a retried press starts the flows it asks for once."""
    body: Press = await _body(request, Press)
    if not body.action.startswith(f"panel:{panel_id}:"):
        raise PanelNotFound(f"{body.action!r} is not a button of panel {panel_id!r}")
    service = await owned(request, panel_id)
    outcome, snap = await service.press(
        body.action,
        user_id=await web_user(request),
        event_id=f"http:{idempotency_key}" if idempotency_key else None,
    )
    return Pressed(outcome=ToolOutcome.of(outcome), snapshot=snap)


@router.get(
    "/api/v1/panels/{panel_id}/versions",
    response_model=list[PanelVersion],
    responses=PANEL_ERRORS,
)
async def versions(panel_id: str, request: Request, limit: int = 100) -> list[PanelVersion]:
    """Newest first."""
    service = await owned(request, panel_id)
    records = await service.versions(panel_id, max(1, min(limit, 1000)))
    return [PanelVersion.model_validate(v.to_json()) for v in records]


@router.post(
    "/api/v1/panels/{panel_id}/rollback",
    response_model=PanelSummary,
    responses={
        **PANEL_ERRORS,
        404: error("No such panel or version", PanelErrorBody),
        409: error("The panel changed meanwhile (stale version)", PanelErrorBody),
        422: INVALID,
    },
)
async def rollback(panel_id: str, request: Request) -> PanelSummary:
    body: Rollback = await _body(request, Rollback)
    service = await owned(request, panel_id)
    await service.rollback(panel_id, body.version, user_id=await web_user(request))
    return _summary(service, panel_id)


@router.post(
    "/api/v1/panels/{panel_id}/grants",
    response_model=Capabilities,
    responses=PANEL_ERRORS,
)
async def grant(panel_id: str, request: Request) -> Capabilities:
    body: Grants = await _body(request, Grants)
    service = await owned(request, panel_id)
    await service.grant(panel_id, body.grants)
    return Capabilities.model_validate(service.capabilities(panel_id))


@router.get("/panels/{panel_id}", response_class=HTMLResponse)
async def preview(panel_id: str, request: Request) -> HTMLResponse:
    rendered = await (await owned(request, panel_id)).render(panel_id)
    page = preview_page(rendered.tree, panel_id, rendered.binding_errors)
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


def install(app: FastAPI, services: WebServices) -> None:
    """Add the panel routes, their error handler and (if enabled) the MCP endpoint."""
    app.include_router(router)
    if services.mcp is not None:
        app.router.add_route("/mcp", services.mcp, include_in_schema=False)

    @app.exception_handler(PanelRuntimeError)
    async def panel_error(_: Request, exc: PanelRuntimeError) -> JSONResponse:
        status = next((s for cls, s in _STATUS if isinstance(exc, cls)), 400)
        if exc.code == "quota_exceeded":  # a workspace quota refused a new panel
            status = 409
        body: dict[str, Any] = error_body(exc.code, exc.message)
        if isinstance(exc, PanelInvalid):
            body["diagnostics"] = [d.model_dump(mode="json") for d in exc.diagnostics]
        return JSONResponse(body, status)
