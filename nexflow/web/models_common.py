"""The error body every HTTP route answers with (:func:`nexflow.web.app.error_body`), as a
model for the OpenAPI document: ``responses={404: error("No such thing")}``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="A stable code, e.g. not_found, forbidden, invalid_request")
    message: str = Field(description="What went wrong, for a person")


class ErrorBody(BaseModel):
    """``{"error": {"code": ..., "message": ...}}``."""

    error: ErrorDetail


def error(description: str, model: type[BaseModel] = ErrorBody) -> dict[str, Any]:
    """One entry of a route's ``responses``: ``model`` (the error body) and why."""
    return {"model": model, "description": description}


# What the app's RequestValidationError handler answers (not FastAPI's default detail list).
INVALID_REQUEST = error("invalid_request: a parameter or body that does not fit")
