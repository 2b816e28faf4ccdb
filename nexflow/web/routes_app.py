"""The pages a browser opens: GraphStudio at ``/``, the classic chat at ``/chat``, the API
reference at ``/docs``.

GraphStudio is a single-page app built from ``connectors/web/app`` into the package
(``connectors/web/static/app``; ``make run`` builds it when missing). Its files are served
under ``/app/``: hashed assets for a year, ``index.html`` never cached, so an upgrade is
picked up by the next load. When the app is not built (a source checkout before
``make run``), ``/`` serves the classic chat page with a notice instead of failing.

Swagger UI's script and stylesheet ship inside the built app (``/app/swagger/``), so
``/docs`` works with no network; nothing is loaded from a CDN.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from nexflow.web.app import WebServices

router = APIRouter(include_in_schema=False)
APP_DIR = "app"
_NOT_BUILT = (
    "<!doctype html><meta charset=utf-8><title>Nexflow</title>"
    "<h1>Nexflow</h1><p>GraphStudio is not built: run <code>make run</code>, or "
    "<code>cd connectors/web/app &amp;&amp; npm ci &amp;&amp; npx vite build</code>. "
    'The chat is at <a href="/chat">/chat</a>, the API at <a href="/docs">/docs</a>.</p>'
)


def _static(request: Request) -> Path | None:
    services: WebServices = request.app.state.services
    return services.static_dir


def app_index(static: Path | None) -> Path | None:
    """The built app's ``index.html``, or None when the app is not built."""
    page = static / APP_DIR / "index.html" if static else None
    return page if page is not None and page.is_file() else None


@router.get("/", response_model=None)
async def index(request: Request) -> Response:
    static = _static(request)
    page = app_index(static)
    if page is not None:
        return FileResponse(page, media_type="text/html", headers={"Cache-Control": "no-cache"})
    return await classic_chat(request)


@router.get("/chat", response_model=None)
async def classic_chat(request: Request) -> Response:
    """The minimal chat page: the fallback when the app is not built, and a page for
    browsers without modern JavaScript."""
    static = _static(request)
    page = static / "index.html" if static else None
    if page is None or not page.is_file():
        return HTMLResponse(_NOT_BUILT)
    return FileResponse(page, media_type="text/html")


@router.get("/docs", response_model=None)
async def api_docs(request: Request) -> Response:
    static = _static(request)
    assets = static / APP_DIR / "swagger" if static else None
    if assets is None or not (assets / "swagger-ui-bundle.js").is_file():
        return HTMLResponse(
            "<!doctype html><meta charset=utf-8><title>Nexflow API</title>"
            "<p>Swagger UI is not built (it ships with GraphStudio: run <code>make run</code>). "
            'The schema is at <a href="/openapi.json">/openapi.json</a>.</p>'
        )
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Nexflow API",
        swagger_js_url=f"/{APP_DIR}/swagger/swagger-ui-bundle.js",
        swagger_css_url=f"/{APP_DIR}/swagger/swagger-ui.css",
        swagger_favicon_url=f"/{APP_DIR}/swagger/favicon-32x32.png",
    )


class _AppFiles(StaticFiles):
    """The built app's files; hashed assets are immutable, so browsers keep them."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if path.startswith("assets/") and response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def install(app: FastAPI, static: Path | None) -> None:
    """Add the pages, and serve ``/app/`` when the app is built."""
    app.include_router(router)
    if static is not None and (static / APP_DIR).is_dir():
        app.mount(f"/{APP_DIR}", _AppFiles(directory=static / APP_DIR), name="graphstudio")
