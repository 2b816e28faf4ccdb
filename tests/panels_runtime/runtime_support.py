"""Helpers shared by the panel runtime tests."""

from __future__ import annotations

import functools
from pathlib import Path

from nexflow.config.model import PanelsConfig
from nexflow.panels.runtime import PanelService, PanelStore
from nexflow.panels.runtime.wiring import BUNDLED_TEMPLATES
from nexflow.sandbox.engine import SandboxEngine
from nexflow.storage.sql_storage import SQLStorage


def make_service(
    storage: SQLStorage,
    cache: Path,
    workspace: Path,
    config: PanelsConfig | None = None,
) -> PanelService:
    return PanelService(
        PanelStore(storage),
        config or PanelsConfig(),
        engine_factory=functools.partial(SandboxEngine, cache_dir=cache),
        templates_dir=BUNDLED_TEMPLATES,
        workspace_dir=workspace,
    )


def panel_with_handler(handler: str, *, panel_id: str = "hostile") -> str:
    """A small panel whose ``run`` tool has ``handler`` as its body; ``bump`` is benign."""
    return f"""<NexusPanel id="{panel_id}" title="Hostile">
  <Data>
    <State name="count" type="number" default="0" />
    <State name="status" type="string" default="ok" />
  </Data>
  <Logic>
    <Tool name="run" description="Runs the code under test">
      <Handler><![CDATA[{handler}]]></Handler>
    </Tool>
    <Tool name="bump" description="Adds one">
      <Handler>$state.count = $state.count + 1;</Handler>
    </Tool>
  </Logic>
  <View>
    <Metric label="Count" value="{{$state.count}}" />
    <StatusBadge label="Status" value="{{$state.status}}" />
    <Action label="Bump" trigger="bump" />
  </View>
</NexusPanel>"""
