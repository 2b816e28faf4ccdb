"""``PanelService``: live panel instances (create, render, run tools, history).

Built once by the composition root with the shared SQLite connection and a factory for
the :class:`~nexflow.sandbox.SandboxEngine` (created on first use, off the event loop, so
a gateway that never shows a panel never loads the guest).

Ownership: every instance has an owner. The service is a
:class:`~nexflow.tools.toolset.ToolProvider`: ``tools_for(ctx)`` gives a turn the tools
of the caller's own panels only, and :meth:`PanelService.owned` is how every path that
names a panel (chat commands, HTTP, MCP) checks the caller may act on it; another user's
panel answers exactly like a missing one.

A tool call runs the handler in a fresh sandbox instance against a copy of the
state, validates the new state against ``<Data>``, applies the ``$view``
effects to the instance's view props and commits state + view + a version row
in one transaction; any failure leaves the instance as it was. Calls on one
instance are serialised by a per-instance lock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from nexflow.bus.events import PanelSnapshotOut
from nexflow.config.model import PanelsConfig
from nexflow.panels import LayoutEngine, NexusPanel, RenderTree
from nexflow.panels.runtime import policy
from nexflow.panels.runtime.errors import (
    CallFailed,
    HandlerFailed,
    PanelInvalid,
    PanelNotFound,
    SandboxUnavailable,
    TemplateNotFound,
    ToolNotFound,
    describe_failure,
)
from nexflow.panels.runtime.flows import FlowStarter, start_flows
from nexflow.panels.runtime.snapshot import build_snapshot, notices_of, parse_action
from nexflow.panels.runtime.state import check_args, check_state, initial_state, load_panel
from nexflow.panels.runtime.store import PanelStore
from nexflow.panels.runtime.tools import PanelTool, build_tools
from nexflow.panels.runtime.versions import (
    CallOutcome,
    Change,
    PanelRecord,
    TriggeredBy,
    VersionKind,
    VersionRecord,
    check_workspace,
)
from nexflow.panels.runtime.viewstate import apply_view_effects, with_overrides
from nexflow.sandbox import GuestNotBuilt, SandboxError, SandboxLimits
from nexflow.tools.base import ToolContext

if TYPE_CHECKING:
    from nexflow.sandbox.engine import SandboxEngine

log = structlog.get_logger("nexflow.panels")
_TEMPLATE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


@dataclass(frozen=True, slots=True)
class RenderedPanel:
    """A render tree resolved for one version; ``binding_errors`` lists failed bindings."""

    record: PanelRecord
    tree: RenderTree
    binding_errors: tuple[str, ...] = ()


class PanelObserver(Protocol):
    """Told about every committed change (the workspace mirror, the web event hub).

    ``before_create`` may raise a :class:`~nexflow.panels.runtime.errors.PanelRuntimeError`
    to refuse a new instance in ``workspace`` of ``owner`` (a quota, a workspace that
    cannot be created); ``committed`` and ``deleted`` must not raise.
    """

    async def before_create(self, owner: str, workspace: str) -> None: ...

    async def committed(self, record: PanelRecord, change: Change) -> None: ...

    async def deleted(self, record: PanelRecord) -> None: ...


@dataclass
class _Instance:
    record: PanelRecord
    panel: NexusPanel
    tree: RenderTree
    tools: list[PanelTool]
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    rendered: RenderedPanel | None = None


class PanelService:
    def __init__(
        self,
        store: PanelStore,
        config: PanelsConfig,
        *,
        engine_factory: Callable[[], SandboxEngine],
        templates_dir: Path | Sequence[Path],
        workspace_dir: Path,
        owner: str = "owner",
        default_workspace: str = "default",
    ) -> None:
        self._store = store
        self._config = config
        self._engine_factory = engine_factory
        self._engine: SandboxEngine | None = None
        self._engine_lock = asyncio.Lock()
        # Later folders win a name clash (installed templates over the bundled ones).
        self._template_dirs = (
            [templates_dir] if isinstance(templates_dir, Path) else list(templates_dir)
        )
        self._workspace_dir = workspace_dir
        self._owner = owner
        self._default_workspace = check_workspace(default_workspace)  # workspaces.default_name
        self._layout = LayoutEngine()
        self._instances: dict[str, _Instance] = {}
        # Every listener hears every change, in order. ``observer`` is the first one, the
        # slot the workspace mirror sets (it may veto a create); the others (the web event
        # hub) are added with :meth:`add_listener` and a failure in them is only logged.
        self._primary: PanelObserver | None = None
        self._listeners: list[PanelObserver] = []
        # starts the flows a handler asks for (``$emit('run_flow', ...)``); set by the
        # composition root, None: such a request is answered "flows are not enabled"
        self.flows: FlowStarter | None = None

    # -- listeners ------------------------------------------------------------------

    @property
    def observer(self) -> PanelObserver | None:
        """The first listener (the workspace mirror); setting it replaces only that one."""
        return self._primary

    @observer.setter
    def observer(self, value: PanelObserver | None) -> None:
        self._primary = value

    def add_listener(self, listener: PanelObserver) -> Callable[[], None]:
        """Tell ``listener`` about every change from now on; returns its remover."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    @property
    def listeners(self) -> tuple[PanelObserver, ...]:
        """Every listener, the primary observer first."""
        first = (self._primary,) if self._primary is not None else ()
        return (*first, *self._listeners)

    async def _before_create(self, owner: str, workspace: str) -> None:
        for listener in self.listeners:
            await listener.before_create(owner, workspace)

    async def _committed(self, record: PanelRecord, change: Change) -> None:
        if self._primary is not None:
            await self._primary.committed(record, change)
        for listener in list(self._listeners):
            try:
                await listener.committed(record, change)
            except Exception:  # a listener must not undo a committed change
                log.warning("panel_listener_failed", panel=record.id, exc_info=True)

    async def _deleted(self, record: PanelRecord) -> None:
        if self._primary is not None:
            await self._primary.deleted(record)
        for listener in list(self._listeners):
            try:
                await listener.deleted(record)
            except Exception:
                log.warning("panel_listener_failed", panel=record.id, exc_info=True)

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Load every stored instance and build its tools (storage must be open)."""
        for record in await self._store.all():
            try:
                self._install(record)
            except PanelInvalid as exc:
                log.warning("panel_not_loaded", panel=record.id, error=exc.message)
        log.info("panels_loaded", count=len(self._instances))

    async def stop(self) -> None:
        self._instances.clear()
        engine, self._engine = self._engine, None
        if engine is not None:
            await asyncio.to_thread(engine.close)

    async def sandbox(self) -> SandboxEngine:
        """The engine, created on first use; :class:`SandboxUnavailable` if it cannot load."""
        if self._engine is None:
            async with self._engine_lock:
                if self._engine is None:
                    try:
                        self._engine = await asyncio.to_thread(self._engine_factory)
                    except SandboxError as exc:
                        hint = str(exc) if isinstance(exc, GuestNotBuilt) else "see the log"
                        log.error("sandbox_unavailable", exc_info=True)
                        raise SandboxUnavailable(
                            f"the panel sandbox is unavailable: {hint}"
                        ) from exc
        return self._engine

    # -- instances ------------------------------------------------------------------

    def _template_files(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for folder in self._template_dirs:
            for path in sorted(folder.glob("*.nxml")):
                found[path.stem] = path
        return found

    def templates(self) -> list[dict[str, str]]:
        return [{"name": name} for name in sorted(self._template_files())]

    def template_source(self, name: str) -> str:
        path = self._template_files().get(name) if _TEMPLATE.fullmatch(name) else None
        if path is None or not path.is_file():
            known = ", ".join(t["name"] for t in self.templates()) or "none"
            raise TemplateNotFound(f"there is no panel template {name!r} (available: {known})")
        return path.read_text(encoding="utf-8")

    async def create(
        self,
        *,
        template: str | None = None,
        nxml: str | None = None,
        owner: str | None = None,
        workspace: str | None = None,
    ) -> PanelRecord:
        """A new instance from a bundled template or NXML source, at version 1, in
        ``workspace`` of its owner (the default workspace when None)."""
        name = check_workspace(workspace) if workspace else self._default_workspace
        source = self.template_source(template) if template is not None else nxml or ""
        panel = load_panel(source)
        state = initial_state(panel)
        owner = owner or self._owner
        await self._before_create(owner, name)
        change = Change("create", state, {}, user_id=owner)
        record = await self._store.create(
            panel.id, panel.id, owner, panel.title, source, change, workspace=name
        )
        self._install(record, panel)
        log.info("panel_created", panel=record.id, template=panel.id, workspace=name)
        await self._committed(record, change)
        return record

    def instances(self, owner: str | None = None) -> list[PanelRecord]:
        """Every instance (the service's own view), or only ``owner``'s."""
        return [
            inst.record
            for inst in self._instances.values()
            if owner is None or inst.record.owner == owner
        ]

    def get(self, panel_id: str) -> PanelRecord:
        return self._get(panel_id).record

    def owned(self, panel_id: str, user_id: str, *, admin: bool = False) -> PanelRecord:
        """The instance if ``user_id`` owns it (or ``admin``: the owner role's explicit
        admin view); another user's panel is :class:`PanelNotFound`, like a missing one."""
        inst = self._instances.get(panel_id)
        if inst is None or (not admin and inst.record.owner != user_id):
            raise PanelNotFound(f"there is no panel {panel_id!r}")
        return inst.record

    def tools_for(self, ctx: ToolContext) -> list[PanelTool]:
        """The tools of the caller's own panels (a :class:`ToolProvider`)."""
        return [
            tool
            for inst in self._instances.values()
            if inst.record.owner == ctx.user_id
            for tool in inst.tools
        ]

    def definition(self, panel_id: str) -> NexusPanel:
        return self._get(panel_id).panel

    def tools_of(self, panel_id: str) -> list[PanelTool]:
        return list(self._get(panel_id).tools)

    async def delete(self, panel_id: str) -> None:
        inst = self._get(panel_id)
        async with inst.lock:
            await self._store.delete(panel_id)
            self._instances.pop(panel_id, None)
        log.info("panel_deleted", panel=panel_id)
        await self._deleted(inst.record)

    async def grant(self, panel_id: str, grants: Sequence[str]) -> tuple[str, ...]:
        """Add capability grants to one instance; returns all of its grants."""
        inst = self._get(panel_id)
        merged = policy.check_grants((*inst.record.grants, *grants))
        async with inst.lock:
            await self._store.set_grants(panel_id, merged)
            inst.record = dataclasses.replace(inst.record, grants=merged)
        return merged

    def capabilities(self, panel_id: str) -> dict[str, Any]:
        inst = self._get(panel_id)
        granted = (*self._config.grants.get(inst.record.template, ()), *inst.record.grants)
        caps = policy.capabilities_for(inst.panel, granted, self._workspace_dir)
        return {
            "declared": list(policy.declared_grants(inst.panel)),
            "granted": list(dict.fromkeys(granted)),
            "effective": sorted(
                [f"http:{h}" for h in caps.http_hosts] + [f"file:{p}" for p in caps.read_paths]
            ),
        }

    # -- rendering ------------------------------------------------------------------

    async def render(self, panel_id: str) -> RenderedPanel:
        """The laid-out tree with bindings evaluated in the sandbox (cached per version)."""
        inst = self._get(panel_id)
        record = inst.record
        cached = inst.rendered
        if cached is not None and cached.record.version == record.version:
            return cached
        values: dict[str, Any] = {}
        errors: list[str] = []
        expressions = inst.tree.expressions()
        if expressions:
            engine = await self.sandbox()
            try:
                results = await engine.aeval_batch(expressions, record.state, self._limits(inst))
            except SandboxError as exc:
                errors.append(f"bindings were not evaluated: {describe_failure(exc)}")
            else:
                for expr, res in zip(expressions, results, strict=True):
                    if res.ok:
                        values[expr] = res.value
                    else:
                        errors.append(f"{{{expr}}}: {res.error}")
        tree = with_overrides(inst.tree.with_values(values), record.view)
        rendered = RenderedPanel(record, tree, tuple(errors))
        inst.rendered = rendered
        return rendered

    async def snapshot(
        self, panel_id: str, *, channel: str = "web", chat_id: str = "", notices: Sequence[str] = ()
    ) -> PanelSnapshotOut:
        rendered = await self.render(panel_id)
        return build_snapshot(rendered.tree, panel_id, channel, chat_id, notices)

    async def press(
        self,
        action: str,
        *,
        channel: str = "web",
        chat_id: str = "",
        user_id: str | None = None,
        event_id: str | None = None,
    ) -> tuple[CallOutcome, PanelSnapshotOut]:
        """Run the tool behind a snapshot button; return the outcome and the new snapshot.
        ``event_id`` (the chat event or HTTP request key) keeps a retried press's flow runs
        to one each."""
        panel_id, key = parse_action(action)
        node = (await self.render(panel_id)).tree.find(key)
        if node is None or node.trigger is None:
            raise PanelNotFound(f"panel {panel_id!r} has no button {key!r} any more")
        outcome = await self.call_tool(
            panel_id,
            node.trigger.tool,
            node.trigger.args,
            user_id=user_id,
            event_id=event_id,
            where=(channel, chat_id),
        )
        notices = notices_of(outcome.effects) if outcome.ok else [f"⚠ {outcome.error}"]
        notices += [str(f["message"]) for f in outcome.flows]
        snapshot = await self.snapshot(panel_id, channel=channel, chat_id=chat_id, notices=notices)
        return outcome, snapshot

    # -- tool calls and history -------------------------------------------------------

    async def call_tool(
        self,
        panel_id: str,
        tool: str,
        args: Mapping[str, Any],
        *,
        triggered_by: TriggeredBy = "user",
        user_id: str | None = None,
        event_id: str | None = None,
        where: tuple[str, str] = ("web", "web"),
    ) -> CallOutcome:
        """Run a Logic tool. Refusals and handler failures come back as ``ok=False``.

        After the commit, the flows the handler asked for start as the panel's owner
        (:mod:`.flows`); their answers are ``outcome.flows``. ``event_id`` makes the call
        idempotent: a press already applied with it is answered from the version it made
        (state, effects, version; not the handler's return value) without running the
        handler again, and its flow starts are not repeated; ``where`` (channel, chat id)
        is where their cards go."""
        inst = self._get(panel_id)
        try:
            outcome = await self._call(inst, tool, args, triggered_by, user_id, event_id)
        except CallFailed as exc:
            log.info(
                "panel_call_failed", panel=panel_id, tool=tool, code=exc.code, error=exc.message
            )
            return CallOutcome(
                ok=False,
                panel_id=panel_id,
                tool=tool,
                state=inst.record.state,
                version=inst.record.version,
                error_code=exc.code,
                error=exc.message,
            )
        if not outcome.effects:
            return outcome
        started = await start_flows(
            self.flows,
            owner=inst.record.owner,
            caller=user_id,
            panel_id=panel_id,
            effects=outcome.effects,
            event_id=event_id,
            channel=where[0] or "web",
            chat_id=where[1] or "web",
        )
        return dataclasses.replace(outcome, flows=started) if started else outcome

    async def _call(
        self,
        inst: _Instance,
        name: str,
        args: Mapping[str, Any],
        triggered_by: TriggeredBy,
        user_id: str | None,
        event_id: str | None = None,
    ) -> CallOutcome:
        tool = inst.panel.tool(name)
        if tool is None:
            have = ", ".join(t.name for t in inst.panel.logic.tools) or "none"
            raise ToolNotFound(f"panel {inst.record.id!r} has no tool {name!r} (it has: {have})")
        clean = check_args(tool, args)
        engine = await self.sandbox()
        granted = (*self._config.grants.get(inst.record.template, ()), *inst.record.grants)
        caps = policy.capabilities_for(inst.panel, granted, self._workspace_dir)
        async with inst.lock:
            if event_id and (done := await self._store.by_event(inst.record.id, event_id)):
                log.info("panel_call_replayed", panel=inst.record.id, tool=name, event_key=event_id)
                return CallOutcome(
                    ok=True,
                    panel_id=inst.record.id,
                    tool=name,
                    state=done.state_after,
                    effects=tuple(done.effects),
                    version=done.version,
                )
            before = inst.record
            source = tool.handler.source if tool.handler is not None else ""
            try:
                out = await engine.arun_handler(
                    source, before.state, clean, self._limits(inst), caps
                )
            except SandboxError as exc:
                raise HandlerFailed(
                    f"{name} failed, nothing was applied: {describe_failure(exc, tool.handler)}",
                    type(exc).__name__,
                ) from exc
            check_state(inst.panel, out.state)
            view = apply_view_effects(inst.tree, before.view, out.effects)
            effects = tuple(e.to_json() for e in out.effects)
            change = Change(
                "tool", out.state, view, name, clean, effects, triggered_by, user_id,
                event_key=event_id,
            )  # fmt: skip
            inst.record = record = await self._store.commit(before, change)
        log.info("panel_call", panel=inst.record.id, tool=name, by=triggered_by, fuel=out.fuel_used)
        await self._committed(record, change)
        return CallOutcome(
            ok=True,
            panel_id=inst.record.id,
            tool=name,
            state=inst.record.state,
            effects=effects,
            version=inst.record.version,
            result=out.result,
            logs=out.logs,
        )

    async def feed(self, panel_id: str, updates: Mapping[str, Any]) -> PanelRecord:
        """Set state keys from the host (a sensor, a log tail): checked against ``<Data>``
        like a handler's result and recorded as a ``feed`` version."""
        inst = self._get(panel_id)
        async with inst.lock:
            before = inst.record
            state = {**before.state, **updates}
            check_state(inst.panel, state)
            change = Change("feed", state, before.view)
            inst.record = record = await self._store.commit(before, change)
        await self._committed(record, change)
        return record

    async def versions(self, panel_id: str, limit: int = 100) -> list[VersionRecord]:
        self._get(panel_id)
        return await self._store.versions(panel_id, limit)

    async def rollback(
        self, panel_id: str, version: int, user_id: str | None = None
    ) -> PanelRecord:
        """Make an older version's state and view current again, as a new version."""
        inst = self._get(panel_id)
        target = await self._store.version(panel_id, version)
        async with inst.lock:
            change = Change(
                "rollback",
                target.state_after,
                target.view_after,
                args={"to_version": version},
                triggered_by="user",
                user_id=user_id,
            )
            inst.record = record = await self._store.commit(inst.record, change)
        await self._committed(record, change)
        return record

    async def apply_change(
        self,
        panel_id: str,
        *,
        state: Mapping[str, Any],
        nxml: str | None = None,
        kind: VersionKind = "patch",
        replace: bool = False,
        user_id: str | None = None,
        args: Mapping[str, Any] | None = None,
    ) -> PanelRecord:
        """Commit state keys (all of them with ``replace``) and optionally a new NXML
        definition as one version; checked against ``<Data>`` like a handler's result.

        This is how an accepted workspace patch or a restore reaches the live panel.
        """
        inst = self._get(panel_id)
        panel = load_panel(nxml) if nxml is not None else inst.panel
        async with inst.lock:
            before = inst.record
            new_state = dict(state) if replace else {**before.state, **state}
            if nxml is not None:  # keys the new <Data> dropped go; new ones start at default
                declared = initial_state(panel)
                new_state = {k: new_state.get(k, v) for k, v in declared.items()}
            check_state(panel, new_state)
            view = before.view if nxml is None else {}
            change = Change(
                kind, new_state, view, args=dict(args or {}), triggered_by="user",
                user_id=user_id, nxml=nxml,
            )  # fmt: skip
            record = await self._store.commit(before, change)
            if nxml is None:
                inst.record = record
            else:
                self._install(record, panel)
        log.info("panel_changed", panel=panel_id, kind=kind, by=user_id)
        await self._committed(record, change)
        return record

    # -- internals --------------------------------------------------------------------

    def _get(self, panel_id: str) -> _Instance:
        inst = self._instances.get(panel_id)
        if inst is None:
            raise PanelNotFound(f"there is no panel {panel_id!r}")
        return inst

    def _limits(self, inst: _Instance) -> SandboxLimits:
        return policy.limits_for(self._config, inst.record.template)

    def _install(self, record: PanelRecord, panel: NexusPanel | None = None) -> None:
        panel = panel or load_panel(record.nxml)
        # Tool names keep ``panels.workspace`` for the default workspace (the names the
        # model knew before panels could live elsewhere); another workspace is named.
        label = record.workspace
        if label == self._default_workspace:
            label = self._config.workspace
        tools = build_tools(record.id, record.owner, label, panel, self)
        self._instances[record.id] = _Instance(record, panel, self._layout.layout(panel), tools)
