"""Builds the FastAPI application from services the composition root hands in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from nexflow import __version__
from nexflow.bus.errors import RateLimited, Rejected
from nexflow.bus.streams import StreamHub
from nexflow.config.model import NexflowConfig, PermissionsConfig, WebConfig, WebhooksConfig
from nexflow.gateway.approvals import ApprovalService
from nexflow.gateway.core import Gateway
from nexflow.llm.budget import Budgets
from nexflow.llm.resolver import ModelResolver
from nexflow.observability.logging import LogHub
from nexflow.observability.metrics import Metrics
from nexflow.skills.service import SkillsService
from nexflow.storage.base import Storage
from nexflow.web.asgi import Authenticator, BodyTooLarge, GuardMiddleware
from nexflow.web.browser import BrowserPolicy
from nexflow.web.hooks import WebRoute
from nexflow.workspace.api import WorkspaceError

if TYPE_CHECKING:
    from nexflow.gateway.agents import AgentService
    from nexflow.gateway.flows import FlowService
    from nexflow.mcp_client import McpServers
    from nexflow.panels.runtime import PanelService
    from nexflow.tasks.service import ReminderService
    from nexflow.tools.toolset import Toolbox
    from nexflow.web.events import EventHub
    from nexflow.workspace.api import Workspaces


@dataclass(frozen=True, slots=True)
class WebServices:
    gateway: Gateway
    storage: Storage
    models: ModelResolver
    metrics: Metrics
    streams: StreamHub
    logs: LogHub
    auth: Authenticator
    config: WebConfig
    skills: SkillsService
    confirmations: ApprovalService
    permissions: PermissionsConfig
    static_dir: Path | None = None
    panels: PanelService | None = None
    mcp: Any = None  # the MCP endpoint's ASGI app, mounted at /mcp when set
    notify: Callable[[], None] | None = None  # wakes the outbox after enqueueing a message
    budgets: Budgets | None = None  # usage totals for /api/v1/statistics
    workspaces: Workspaces | None = None  # patches and panel history (routes_patches)
    # Routes plugins add (a connector's webhook, nexflow.web.hooks), served as they are.
    routes: tuple[WebRoute, ...] = ()
    webhooks: WebhooksConfig | None = None  # inbound signed webhooks (routes_hooks)
    tools: Toolbox | None = None  # each caller's toolset, for the tool registry (routes_tools)
    mcp_servers: McpServers | None = None  # their listed tools in the registry (routes_tools)
    flows: FlowService | None = None  # flows and tasks (routes_flows, routes_tasks); None: 503
    nexflow_config: NexflowConfig | None = None  # the whole config (routes_marketplace)
    agents: AgentService | None = None  # named agents (routes_agents); None: 503
    reminders: ReminderService | None = None  # the caller's reminders (routes_reminders)
    events: EventHub | None = None  # live frames per user (/ws/events, nexflow.web.events)


Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_app(
    services: WebServices,
    startup: Callable[[], Awaitable[None]] | None = None,
    shutdown: Callable[[], Awaitable[None]] | None = None,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if startup is not None:
            await startup()
        try:
            yield
        finally:
            if shutdown is not None:
                await shutdown()

    app = FastAPI(
        title="Nexflow", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.services = services
    _install_errors(app)

    from nexflow.web import (  # read services from app.state
        openapi_doc,
        routes_agents,
        routes_api,
        routes_app,
        routes_events,
        routes_flow_editor,
        routes_flows,
        routes_hooks,
        routes_marketplace,
        routes_openai,
        routes_pairing,
        routes_reminders,
        routes_skills,
        routes_statistics,
        routes_tools,
        routes_turns,
        routes_workspaces,
        routes_ws,
    )

    openapi_doc.install(app)
    routes_app.install(app, services.static_dir)  # GraphStudio, /chat, /docs
    app.include_router(routes_api.router)
    app.include_router(routes_openai.router)
    app.include_router(routes_pairing.router)
    app.include_router(routes_ws.router)
    app.include_router(routes_skills.router)
    app.include_router(routes_statistics.router)  # replaces routes_stats (its overview)
    app.include_router(routes_tools.router)
    app.include_router(routes_turns.router)
    app.include_router(routes_marketplace.router)
    app.include_router(routes_hooks.router)
    routes_flows.install(app)  # and routes_tasks; 503 while services.flows is None
    app.include_router(routes_flow_editor.router)  # validate, node types (GraphStudio)
    app.include_router(routes_agents.router)  # 503 while services.agents is None
    app.include_router(routes_reminders.router)  # 503 while services.reminders is None
    app.include_router(routes_events.router)  # /ws/events; closes 1013 without services.events
    app.include_router(routes_workspaces.router)  # workspaces and their layout (GraphStudio)
    from nexflow.web import routes_dashboard, routes_settings  # GraphStudio's ops views

    app.include_router(routes_dashboard.router)  # queues, usage per day, users
    app.include_router(routes_settings.router)  # the config file, owner only
    if services.panels is not None:
        from nexflow.web import routes_panels

        routes_panels.install(app, services)
    if services.workspaces is not None:
        from nexflow.web import routes_files, routes_patches

        routes_patches.install(app)
        app.include_router(routes_files.router)  # GraphStudio's file browser and editors
    for route in services.routes:
        app.router.routes.append(Route(route.path, route.app, include_in_schema=False))
    max_body = services.config.max_message_chars * 4 + 64 * 1024
    app.add_middleware(
        GuardMiddleware,
        auth=services.auth,
        max_body=max_body,
        policy=BrowserPolicy(services.config),
    )
    return app


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def refusal(exc: WorkspaceError, statuses: Mapping[str, int]) -> JSONResponse:
    """A refusal of the workspace layer as the JSON error body, with its hint when it
    has one; the status is ``statuses[exc.code]``, 400 for a code it does not name (each
    route family maps codes its own way: another user's workspace is 404 for files)."""
    body: dict[str, dict[str, str]] = error_body(exc.code, exc.message)
    if exc.hint:
        body["error"]["hint"] = exc.hint
    return JSONResponse(body, statuses.get(exc.code, 400))


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(Rejected)
    async def rejected(_: Request, exc: Rejected) -> JSONResponse:
        headers = (
            {"Retry-After": f"{exc.retry_after_s:.0f}"} if isinstance(exc, RateLimited) else None
        )
        return JSONResponse(error_body(exc.reason, exc.user_message), exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            problems.append(f"{where}: {err.get('msg')}")
        message = "; ".join(problems) or "invalid request"
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            message = 'The body is not valid JSON. Send e.g. {"message": "hello"}.'
        return JSONResponse(error_body("invalid_request", message), 422)

    @app.exception_handler(BodyTooLarge)
    async def too_large(_: Request, exc: BodyTooLarge) -> JSONResponse:
        return JSONResponse(
            error_body("too_large", f"The body is larger than {exc.limit} bytes."), 413
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code)
