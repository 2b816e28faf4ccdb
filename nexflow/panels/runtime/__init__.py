"""The panel runtime: live NXML panel instances with versioned state.

    service = PanelService(PanelStore(storage), config.panels,
                           engine_factory=..., templates_dir=..., workspace_dir=...)
    await service.start()                      # load stored instances, register their tools
    record = await service.create(template="server-monitor")   # owner's default workspace
    other = await service.create(template="todo", owner="u1", workspace="research")
    outcome = await service.call_tool(record.id, "restart_node", {})
    snapshot = await service.snapshot(record.id)   # PanelSnapshotOut (HTML-safe text, buttons)

Handlers run in :mod:`nexflow.sandbox`; results are validated against the
panel's ``<Data>`` and committed all-or-none with a version row. Panel tools are
named ``user:workspace:panel:tool`` (provider-safe, see :mod:`.tools`), offered only to
their owner's turns (``PanelService.tools_for``) and served over MCP to the owner
(:mod:`.mcp_server`). Each panel
belongs to one workspace of its owner, chosen at creation (``PanelRecord.workspace``;
the git side is ``nexflow.workspace``). Design and HTTP contract: ``docs/panels.md``.

Exceptions (``code`` is stable, ``message`` safe to show)::

    PanelRuntimeError
    ├── PanelNotFound, TemplateNotFound, VersionNotFound
    ├── PanelInvalid           NXML did not parse/validate (.diagnostics)
    ├── GrantInvalid           a capability grant string is malformed
    ├── WorkspaceNameInvalid   a new panel's workspace name is not valid
    ├── SandboxUnavailable     the wasm guest is not built / failed to load
    ├── FlowRefused            a run_flow request was not started (.flows: FlowStarter)
    └── CallFailed             a tool call changed nothing (returned as ok=False)
        ├── ToolNotFound, ArgsInvalid
        ├── HandlerFailed      threw, out of fuel/time/memory, capability denied
        ├── StateRejected      unknown key, deleted key or wrong type in the new state
        └── ViewEffectRejected a $view effect with no target, bad method or value
"""

from nexflow.panels.runtime.errors import (
    ArgsInvalid,
    CallFailed,
    GrantInvalid,
    HandlerFailed,
    PanelInvalid,
    PanelNotFound,
    PanelRuntimeError,
    SandboxUnavailable,
    StateRejected,
    TemplateNotFound,
    ToolNotFound,
    VersionNotFound,
    ViewEffectRejected,
    WorkspaceNameInvalid,
)
from nexflow.panels.runtime.service import PanelService, RenderedPanel
from nexflow.panels.runtime.store import PanelStore
from nexflow.panels.runtime.tools import PanelTool, provider_name, qualified_name
from nexflow.panels.runtime.versions import CallOutcome, PanelRecord, VersionRecord

__all__ = [
    "ArgsInvalid",
    "CallFailed",
    "CallOutcome",
    "GrantInvalid",
    "HandlerFailed",
    "PanelInvalid",
    "PanelNotFound",
    "PanelRecord",
    "PanelRuntimeError",
    "PanelService",
    "PanelStore",
    "PanelTool",
    "RenderedPanel",
    "SandboxUnavailable",
    "StateRejected",
    "TemplateNotFound",
    "ToolNotFound",
    "VersionNotFound",
    "VersionRecord",
    "ViewEffectRejected",
    "WorkspaceNameInvalid",
    "provider_name",
    "qualified_name",
]
