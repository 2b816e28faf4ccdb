"""How the composition root builds the panel runtime (one call, explicit inputs)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from nexflow.config.model import NexflowConfig
from nexflow.panels.runtime.mcp_endpoint import LazyMCPEndpoint
from nexflow.panels.runtime.service import PanelService
from nexflow.panels.runtime.store import PanelStore
from nexflow.storage.connection import SQLConnection

if TYPE_CHECKING:
    from nexflow.sandbox.engine import SandboxEngine

BUNDLED_TEMPLATES = Path(__file__).resolve().parents[3] / "panels"


def _engine(cache_dir: Path) -> SandboxEngine:
    from nexflow.sandbox.engine import SandboxEngine  # imports wasmtime: only when a panel runs

    return SandboxEngine(cache_dir=cache_dir)


def build_panels(
    config: NexflowConfig, conn: SQLConnection
) -> tuple[PanelService, LazyMCPEndpoint | None]:
    """The service (start it after storage opens) and, if enabled, its MCP endpoint."""
    cache_dir = config.panels.cache_dir or config.home / "cache" / "sandbox"
    service = PanelService(
        PanelStore(conn),
        config.panels,
        engine_factory=functools.partial(_engine, cache_dir),
        # `nexflow panels install` puts templates in panels.templates_dir, else <home>/panels.
        templates_dir=config.panels.templates_dir or [BUNDLED_TEMPLATES, config.home / "panels"],
        workspace_dir=config.workspace_dir,
        default_workspace=config.workspaces.default_name,
    )
    mcp = None
    if config.panels.mcp:
        mcp = LazyMCPEndpoint(service, loopback_only=config.web.token is None)
    return service, mcp
