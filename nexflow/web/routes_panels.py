"""HTTP endpoints of the panel runtime (contract in ``docs/panels.md``)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, FastAPI, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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


def _summary(service: PanelService, panel_id: str) -> dict[str, Any]:
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


@router.get("/api/v1/panel-templates")
async def list_templates(request: Request) -> list[dict[str, str]]:
    return panels(request).templates()


@router.get("/api/v1/panels", response_model=None)
async def list_panels(request: Request, all: bool = False) -> list[dict[str, Any]] | JSONResponse:
    """The caller's panels; the owner adds ``?all=true`` for everyone's (the admin view)."""
    service = panels(request)
    if all and caller_of(request).role != "owner":
        return JSONResponse(error_body("forbidden", "Only the owner sees everyone's."), 403)
    owner = None if all else await web_user(request)
    return [_summary(service, r.id) for r in service.instances(owner)]


@router.post("/api/v1/panels", status_code=201)
async def create_panel(request: Request) -> dict[str, Any]:
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


@router.get("/api/v1/panels/{panel_id}")
async def get_panel(panel_id: str, request: Request) -> dict[str, Any]:
    service = await owned(request, panel_id)
    rendered = await service.render(panel_id)
    return {
        **_summary(service, panel_id),
        "view": rendered.record.view,
        "render": rendered.tree.model_dump(mode="json"),
        "binding_errors": list(rendered.binding_errors),
        "capabilities": service.capabilities(panel_id),
    }


@router.delete("/api/v1/panels/{panel_id}", status_code=204)
async def delete_panel(panel_id: str, request: Request) -> Response:
    await (await owned(request, panel_id)).delete(panel_id)
    return Response(status_code=204)


@router.post("/api/v1/panels/{panel_id}/tools/{tool}")
async def call_tool(
    panel_id: str,
    tool: str,
    request: Request,
    idempotency_key: str | None = Header(None, max_length=200),
) -> JSONResponse:
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
    status = 404 if outcome.error_code == "unknown_tool" else 200
    return JSONResponse(outcome.to_json(), status)


@router.get("/api/v1/panels/{panel_id}/snapshot")
async def snapshot(panel_id: str, request: Request) -> dict[str, Any]:
    return (await (await owned(request, panel_id)).snapshot(panel_id)).model_dump(mode="json")


@router.post("/api/v1/panels/{panel_id}/press")
async def press(
    panel_id: str, request: Request, idempotency_key: str | None = Header(None, max_length=200)
) -> dict[str, Any]:
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
    return {"outcome": outcome.to_json(), "snapshot": snap.model_dump(mode="json")}


@router.get("/api/v1/panels/{panel_id}/versions")
async def versions(panel_id: str, request: Request, limit: int = 100) -> list[dict[str, Any]]:
    service = await owned(request, panel_id)
    records = await service.versions(panel_id, max(1, min(limit, 1000)))
    return [v.to_json() for v in records]


@router.post("/api/v1/panels/{panel_id}/rollback")
async def rollback(panel_id: str, request: Request) -> dict[str, Any]:
    body: Rollback = await _body(request, Rollback)
    service = await owned(request, panel_id)
    await service.rollback(panel_id, body.version, user_id=await web_user(request))
    return _summary(service, panel_id)


@router.post("/api/v1/panels/{panel_id}/grants")
async def grant(panel_id: str, request: Request) -> dict[str, Any]:
    body: Grants = await _body(request, Grants)
    service = await owned(request, panel_id)
    await service.grant(panel_id, body.grants)
    return service.capabilities(panel_id)


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
