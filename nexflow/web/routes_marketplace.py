"""The marketplace behind the web UI: skills and panel templates from the configured
indexes (``skills.index``, ``panels.index``), with what the verified install's scan finds.

Owner only (installing changes what every user's model can run):

* ``GET /api/v1/marketplace`` lists the index entries and whether each is installed (and
  at which version) — no download;
* ``GET /api/v1/marketplace/{kind}/{slug}`` fetches the entry into quarantine, loads and
  scans it, answers with its declared permissions and the scan's findings, and discards it;
* ``POST /api/v1/marketplace/{kind}/{slug}/install`` ``{"approve_findings": bool}`` installs
  it through the same path as ``nexflow skills install`` (hashes checked against the
  index, locked); a flagged entry answers 409 with its findings unless approved.

Fetching, scanning and installing run in a thread: they touch the disk and the network.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from nexflow.config.model import NexflowConfig
from nexflow.panels.install import PanelInstaller
from nexflow.skills.errors import SkillError
from nexflow.skills.install import Installer, InstallPlan
from nexflow.skills.install.installer import BaseInstaller
from nexflow.skills.install.sources import load_index
from nexflow.web.app import WebServices, error_body
from nexflow.web.identity import caller_of

router = APIRouter()
Kind = Literal["skill", "panel"]


class MarketEntry(BaseModel):
    kind: Kind
    slug: str
    version: str | None
    description: str
    installed: bool
    installed_version: str | None


class Marketplace(BaseModel):
    entries: list[MarketEntry]
    indexes: dict[str, str | None]
    errors: list[str]  # an index that could not be read, and why


class FindingOut(BaseModel):
    rule: str
    severity: str
    file: str
    line: int | None
    message: str


class Review(BaseModel):
    kind: Kind
    slug: str
    name: str
    version: str | None
    description: str
    permissions: list[str]
    findings: list[FindingOut]
    flagged: bool
    warnings: list[str]


class InstallBody(BaseModel):
    approve_findings: bool = False


class Installed(BaseModel):
    kind: Kind
    name: str
    version: str | None
    files: int


def _config(request: Request) -> NexflowConfig | None:
    svc: WebServices = request.app.state.services
    return svc.nexflow_config


def _installer(config: NexflowConfig, kind: Kind) -> tuple[BaseInstaller, str | None]:
    if kind == "skill":
        index = config.skills.index
        return Installer.at_home(config.home, index=index), index
    index = config.panels.index
    return PanelInstaller.at_home(
        config.home, templates_dir=config.panels.templates_dir, index=index
    ), index


def _owner_config(request: Request) -> NexflowConfig | JSONResponse:
    """The config for the owner; a 403/503 answer for anyone else or without one."""
    if caller_of(request).role != "owner":
        return JSONResponse(error_body("forbidden", "Only the owner installs."), 403)
    config = _config(request)
    if config is None:
        return JSONResponse(error_body("unavailable", "The marketplace is not set up."), 503)
    return config


def _list(config: NexflowConfig) -> Marketplace:
    entries: list[MarketEntry] = []
    errors: list[str] = []
    indexes: dict[str, str | None] = {}
    for kind in ("skill", "panel"):
        installer, index = _installer(config, kind)
        indexes[kind] = index
        if index is None:
            continue
        try:
            items, _ = load_index(index)
            locked = installer.lock().entries
        except SkillError as exc:
            errors.append(f"{kind} index {index}: {exc.message}")
            continue
        for item in items:
            slug = str(item.get("slug") or "")
            if not slug:
                continue
            # Locked by the item's own name; an index install records the slug as source.
            mine = next(
                (e for e in locked.values() if e.source == slug and e.index == index),
                locked.get(slug),
            )
            version = item.get("version")
            entries.append(
                MarketEntry(
                    kind=kind,
                    slug=slug,
                    version=None if version is None else str(version),
                    description=str(item.get("description") or ""),
                    installed=mine is not None,
                    installed_version=mine.version if mine is not None else None,
                )
            )
    return Marketplace(entries=entries, indexes=indexes, errors=errors)


def _review(kind: Kind, slug: str, plan: InstallPlan) -> Review:
    return Review(
        kind=kind,
        slug=slug,
        name=plan.name,
        version=plan.version,
        description=plan.description,
        permissions=sorted(plan.declared_permissions),
        findings=[
            FindingOut(
                rule=f.rule, severity=f.severity, file=f.file, line=f.line, message=f.message
            )
            for f in plan.findings
        ],
        flagged=plan.flagged,
        warnings=list(plan.load_warnings),
    )


def _plan(config: NexflowConfig, kind: Kind, slug: str) -> tuple[BaseInstaller, InstallPlan]:
    installer, index = _installer(config, kind)
    if index is None:
        raise SkillError(f"no {kind} index is configured ({kind}s.index in config)")
    return installer, installer.plan(slug, index=index)


def _inspect(config: NexflowConfig, kind: Kind, slug: str) -> Review:
    installer, plan = _plan(config, kind, slug)
    try:
        return _review(kind, slug, plan)
    finally:
        installer.discard(plan)


def _install(config: NexflowConfig, kind: Kind, slug: str, approve: bool) -> Installed | Review:
    installer, plan = _plan(config, kind, slug)
    if plan.flagged and not approve:
        installer.discard(plan)
        return _review(kind, slug, plan)
    done = installer.commit(plan, approved=approve)
    return Installed(kind=kind, name=done.name, version=done.version, files=len(done.files))


@router.get("/api/v1/marketplace", response_model=Marketplace)
async def marketplace(request: Request) -> JSONResponse | Marketplace:
    config = _owner_config(request)
    if isinstance(config, JSONResponse):
        return config
    return await asyncio.to_thread(_list, config)


@router.get("/api/v1/marketplace/{kind}/{slug}", response_model=Review)
async def review(kind: Kind, slug: str, request: Request) -> JSONResponse | Review:
    config = _owner_config(request)
    if isinstance(config, JSONResponse):
        return config
    try:
        return await asyncio.to_thread(_inspect, config, kind, slug)
    except SkillError as exc:
        return JSONResponse(error_body("not_installable", exc.message), 422)


@router.post(
    "/api/v1/marketplace/{kind}/{slug}/install",
    response_model=Installed,
    status_code=201,
    responses={409: {"model": Review}},
)
async def install(
    kind: Kind, slug: str, body: InstallBody, request: Request
) -> JSONResponse | Installed:
    config = _owner_config(request)
    if isinstance(config, JSONResponse):
        return config
    try:
        done = await asyncio.to_thread(_install, config, kind, slug, body.approve_findings)
    except SkillError as exc:
        return JSONResponse(error_body("not_installable", exc.message), 422)
    if isinstance(done, Review):
        body_out = {
            **error_body(
                "flagged",
                "The scan flagged this entry; review the findings and repeat with "
                '{"approve_findings": true} to install it anyway.',
            ),
            "review": done.model_dump(),
        }
        return JSONResponse(body_out, 409)
    return JSONResponse(done.model_dump(), 201)
