"""``GET /api/v1/statistics/overview``: messages, LLM calls, tokens, cost, per model.

Two blocks, ``total`` and ``today`` (the UTC day in ``day``); the numbers come from the
usage the budgets record after every turn.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from nexflow.web.app import WebServices, error_body

router = APIRouter()


@router.get("/api/v1/statistics/overview", response_model=None)
async def overview(request: Request) -> dict[str, Any] | JSONResponse:
    svc: WebServices = request.app.state.services
    if svc.budgets is None:
        return JSONResponse(error_body("not_available", "Usage statistics are not enabled."), 404)
    return await svc.budgets.overview()
