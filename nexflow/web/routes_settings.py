"""``GET /api/v1/settings`` and ``PUT /api/v1/settings``: the configuration file, for the
owner only (anyone else: 403).

GET answers the configuration as the next start would load it (file + environment),
every secret masked (``"***"``, or None when not set; ``secrets`` says which are set),
plus the keys that apply without a restart (``live``) and the keys whose file value
differs from what the running gateway uses (``pending_restart``).

PUT ``{"changes": {"dotted.key": value}}`` merges the changes into the file through
:class:`nexflow.config.edit.ConfigFile`: validated whole by the start-up loader, so a
bad value answers 422 with the loader's own message (and ``problems`` per key) and the
file is left as it was. A secret may be set (any value but ``"***"``, which means
"unchanged") and is never sent back. Live keys (``logging.*``) are applied at once.

Which file: ``app.state.config_file`` (a :class:`ConfigFile`, set by whoever starts the
server); without it the same search ``nexflow serve`` makes with no ``--config``.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from nexflow.config.edit import (
    LIVE_PREFIXES,
    MASK,
    ConfigFile,
    masked,
    needs_restart,
    problems_text,
)
from nexflow.config.errors import ConfigError
from nexflow.config.loader import find_config_path
from nexflow.config.model import NexflowConfig
from nexflow.web.app import WebServices, error_body
from nexflow.web.identity import caller_of
from nexflow.web.models_common import ErrorBody, error

router = APIRouter()


class Settings(BaseModel):
    path: str | None = Field(description="The configuration file (None: environment only)")
    config: dict[str, Any] = Field(description="The configuration, every secret masked")
    secrets: dict[str, bool] = Field(description="Each secret's dotted key: whether it is set")
    live: list[str] = Field(description="Keys (prefixes) applied without a restart")
    pending_restart: list[str] = Field(
        description="Keys whose saved value the running gateway does not use yet"
    )
    error: str | None = Field(None, description="Why the file cannot be loaded, if it cannot")


class SettingsChange(BaseModel):
    changes: dict[str, Any] = Field(
        min_length=1,
        description='Dotted key → new value; null removes the key (its default applies); "***" '
        "for a secret means unchanged",
    )


class SettingsSaved(BaseModel):
    changed: list[str]
    applied: list[str] = Field(description="Changes the running gateway applied at once")
    restart_required: list[str] = Field(description="Changes that take effect after a restart")
    settings: Settings


class ConfigProblemOut(BaseModel):
    path: str = Field(description="The dotted key (empty: the file as a whole)")
    message: str
    hint: str


class InvalidConfig(ErrorBody):
    """422 ``invalid_config``: the start-up loader's message, and each problem by key."""

    problems: list[ConfigProblemOut]


_ERRORS: dict[int | str, dict[str, Any]] = {
    403: error("The caller is not the owner"),
    422: error("The configuration refused a value (the loader's own message)", InvalidConfig),
}


def config_file(request: Request) -> ConfigFile:
    """The file the gateway was started with (see the module's docstring)."""
    known = getattr(request.app.state, "config_file", None)
    if isinstance(known, ConfigFile):
        return known
    return ConfigFile(find_config_path(None), dict(os.environ))


def _forbidden(request: Request) -> JSONResponse | None:
    if caller_of(request).role != "owner":
        return JSONResponse(error_body("forbidden", "Only the owner sees the settings."), 403)
    return None


def _flat(node: Any, path: str = "") -> dict[str, Any]:
    if isinstance(node, dict) and node:
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_flat(v, f"{path}.{k}" if path else str(k)))
        return out
    return {path: node}


def _settings(request: Request, source: ConfigFile) -> Settings:
    svc: WebServices = request.app.state.services
    running = svc.nexflow_config
    error: str | None = None
    try:
        saved: NexflowConfig | None = source.load()
    except ConfigError as exc:
        saved, error = None, problems_text(exc)
    shown = saved or running or NexflowConfig()
    config, secrets = masked(shown)
    pending: list[str] = []
    if saved is not None and running is not None:
        now, then = _flat(masked(running)[0]), _flat(config)
        differ = sorted(k for k in {*now, *then} if now.get(k) != then.get(k))
        pending = needs_restart(differ)
    return Settings(
        path=str(source.path) if source.path else None,
        config=config,
        secrets=secrets,
        live=list(LIVE_PREFIXES),
        pending_restart=pending,
        error=error,
    )


@router.get("/api/v1/settings", response_model=Settings, responses=_ERRORS)
async def get_settings(request: Request) -> Settings | JSONResponse:
    """The configuration (secrets masked), what applies live and what awaits a restart."""
    if (refused := _forbidden(request)) is not None:
        return refused
    return _settings(request, config_file(request))


@router.put("/api/v1/settings", response_model=SettingsSaved, responses=_ERRORS)
async def put_settings(body: SettingsChange, request: Request) -> SettingsSaved | JSONResponse:
    """Validate and write the changes; answer which apply now and which after a restart."""
    if (refused := _forbidden(request)) is not None:
        return refused
    source = config_file(request)
    changes = {k: v for k, v in body.changes.items() if v != MASK}
    try:
        config = source.apply(changes) if changes else source.load()
    except ConfigError as exc:
        refusal = InvalidConfig.model_validate(
            {
                **error_body("invalid_config", problems_text(exc)),
                "problems": [
                    {"path": p.path, "message": p.message, "hint": p.hint} for p in exc.problems
                ],
            }
        )
        return JSONResponse(refusal.model_dump(), 422)
    keys = sorted(changes)
    later = needs_restart(keys)
    applied = [k for k in keys if k not in later]
    if applied:
        _apply_live(request, config)
    return SettingsSaved(
        changed=keys,
        applied=applied,
        restart_required=later,
        settings=_settings(request, source),
    )


def _apply_live(request: Request, config: NexflowConfig) -> None:
    """Apply the live keys (``logging.level``, ``logging.format``, ``skills.disabled``) to
    the running gateway."""
    from nexflow.observability.logging import configure_logging

    svc: WebServices = request.app.state.services
    configure_logging(config.logging.level, config.logging.format, svc.logs)
    svc.skills.registry.set_disabled(config.skills.disabled)
