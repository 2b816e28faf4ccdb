"""A real ``PanelService`` in a temporary directory, for the panel and workspace benches.

SQLite storage, the Wasm sandbox with its module cache, the bundled templates; logging
at warning so the figures are not printed between log lines.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import structlog  # noqa: E402

from nexflow.config.model import PanelsConfig  # noqa: E402
from nexflow.panels.runtime import PanelService, PanelStore  # noqa: E402
from nexflow.panels.runtime.wiring import BUNDLED_TEMPLATES  # noqa: E402
from nexflow.sandbox.engine import SandboxEngine  # noqa: E402
from nexflow.storage.sql_storage import SQLStorage  # noqa: E402


@contextlib.asynccontextmanager
async def panel_service() -> AsyncIterator[tuple[PanelService, SQLStorage, Path]]:
    """Yield a started service, its storage and the temporary base directory."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        storage = SQLStorage(base / "bench.db")
        await storage.open()
        service = PanelService(
            PanelStore(storage),
            PanelsConfig(),
            engine_factory=functools.partial(SandboxEngine, cache_dir=base / "cache"),
            templates_dir=BUNDLED_TEMPLATES,
            workspace_dir=base,
        )
        await service.start()
        try:
            yield service, storage, base
        finally:
            await service.stop()
            await storage.close()
