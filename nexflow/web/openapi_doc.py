"""The OpenAPI document the gateway publishes at ``/openapi.json``.

Request bodies that routes read themselves (to answer malformed JSON in their own words)
describe their schema with ``openapi_extra`` and a Pydantic ``model_json_schema()``, which
nests its sub-models under a local ``$defs`` with ``#/$defs/...`` references. Those do not
resolve inside an OpenAPI document (Swagger UI shows them broken; ``openapi-typescript``
refuses the file), so they are moved to ``components.schemas`` and the references follow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

_LOCAL = "#/$defs/"
_COMPONENT = "#/components/schemas/"


def hoist_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every nested ``$defs`` moved to its components (idempotent)."""
    components: dict[str, Any] = schema.setdefault("components", {}).setdefault("schemas", {})

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            defs = node.pop("$defs", None)
            if isinstance(defs, dict):
                for name, definition in defs.items():
                    walk(definition)
                    components.setdefault(name, definition)
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(_LOCAL):
                node["$ref"] = _COMPONENT + ref[len(_LOCAL) :]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(schema.get("paths", {}))
    return schema


def install(app: FastAPI) -> None:
    """Serve the document with nested definitions hoisted."""
    original: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        return hoist_defs(original())

    app.openapi = openapi  # type: ignore[method-assign]
