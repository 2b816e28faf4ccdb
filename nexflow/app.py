"""The composition root: the one place the object graph is built and started.

Nothing else constructs long-lived services; everything is passed down from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from nexflow import i18n
from nexflow.bus.errors import Rejected
from nexflow.bus.events import InboundEvent, TextOut
from nexflow.bus.middleware import (
    Identity,
    LogContext,
    MetricsMiddleware,
    Middleware,
    RateLimit,
)
from nexflow.bus.streams import StreamHub
from nexflow.config import ConfigError, ConfigProblem
from nexflow.config.model import NexflowConfig, PermissionsConfig
from nexflow.flow_runtime import flow_services as _flows
from nexflow.flow_runtime import reminder_service, tool_base
from nexflow.gateway.approvals import ApprovalService
from nexflow.gateway.commands import CommandRouter
from nexflow.gateway.commands_workspace import WorkspaceCommands
from nexflow.gateway.connector import Connector, Drafting
from nexflow.gateway.control import ControlCommands
from nexflow.gateway.core import Gateway
from nexflow.gateway.flow_triggers import FlowTriggers
from nexflow.gateway.flows import FlowService
from nexflow.gateway.outbox import OutboxDispatcher
from nexflow.gateway.replicas import SessionLeases, replica_owner
from nexflow.gateway.singletons import elect_connectors
from nexflow.gateway.stop import RemoteStops
from nexflow.gateway.stream_relay import StreamRelays, stream_relays
from nexflow.gateway.turns import TurnRunner
from nexflow.gateway.workspace_tools import workspace_tools
from nexflow.llm.budget import Budgets
from nexflow.llm.gate import BudgetGate
from nexflow.llm.litellm_client import LiteLLMLoader
from nexflow.llm.resolver import ModelResolver
from nexflow.mcp_client import McpServers
from nexflow.memory import MemoryService, build_memory, memory_tools
from nexflow.memory.page_tools import page_tools
from nexflow.memory.paging import ContextPager
from nexflow.observability.logging import LogHub
from nexflow.observability.metrics import Metrics
from nexflow.panels.runtime import PanelService
from nexflow.panels.runtime.chat import PanelChat
from nexflow.panels.runtime.feeds import HostFeed
from nexflow.panels.runtime.mcp_endpoint import LazyMCPEndpoint
from nexflow.scale.limits import BucketPruner, bucket_pruner
from nexflow.scale.wiring import SharedLimits, shared_limits
from nexflow.skills.install import Installer
from nexflow.skills.install.chat import ChatInstall
from nexflow.skills.remote import WorkerSkills
from nexflow.skills.service import SkillsService
from nexflow.storage.engine import redact
from nexflow.storage.open import storage_for
from nexflow.storage.sql_storage import SQLStorage
from nexflow.tasks import ReminderService, reminder_tools
from nexflow.tools.base import ToolContext
from nexflow.tools.registry import ToolRegistry
from nexflow.tools.toolset import Toolbox
from nexflow.web.app import WebServices, create_app
from nexflow.web.asgi import Authenticator
from nexflow.web.events import EventHub
from nexflow.web.hooks import ServesWeb
from nexflow.workspace.lazy import LazyWorkspaces
from nexflow.workspace.wiring import build_workspaces

log = structlog.get_logger("nexflow.app")


@dataclass
class Application:
    config: NexflowConfig
    storage: SQLStorage
    gateway: Gateway
    outbox: OutboxDispatcher
    connectors: dict[str, Connector]
    metrics: Metrics
    tools: Toolbox  # the built-ins and each caller's own tools (tools_for)
    models: ModelResolver
    skills: SkillsService
    reminders: ReminderService
    panels: PanelService | None = None
    panel_mcp: LazyMCPEndpoint | None = None
    host_feed: HostFeed | None = None
    memory: MemoryService | None = None
    workspaces: LazyWorkspaces | None = None
    mcp_servers: McpServers | None = None  # MCP servers Nexflow is a client of (lazy)
    flows: FlowService | None = None  # the flow engine starts on first use (docs/flows.md)
    flow_triggers: FlowTriggers | None = None  # cron triggers, loaded in the background
    events: EventHub | None = None  # /ws/events' fan-out; its render tasks end at stop
    relays: StreamRelays | None = None  # live events across replicas (Postgres only)
    limits: SharedLimits | None = None  # rate limits, breakers across replicas (Postgres)
    pruner: BucketPruner | None = None  # drops idle rate buckets on Postgres
    web: FastAPI = field(init=False)
    _pumps: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        self.config.home.mkdir(parents=True, exist_ok=True)
        self.config.workspace_dir.mkdir(parents=True, exist_ok=True)
        await self.storage.open()
        if self.limits is not None:
            await self.limits.open()
        if self.pruner is not None:
            self.pruner.start()
        if self.relays is not None:
            await self.relays.start()
        await self.skills.start()
        await self.reminders.start()  # after storage.open: it shares the database file
        if self.memory is not None:
            await self.memory.start()
        if self.panels is not None:
            await self.panels.start()
        if self.workspaces is not None:
            await self.workspaces.start()  # after panels: it mirrors them into git (lazy.py)
        if self.host_feed is not None:
            self.host_feed.start()
        for name, connector in self.connectors.items():
            await connector.start()
            self.outbox.attach(name, connector)
            self._pumps.append(
                asyncio.create_task(self._pump(connector), name=f"nexflow-pump-{name}")
            )
        recovered = await self.gateway.start()
        self.outbox.start()
        self.outbox.notify()
        if self.flows is not None:
            await self.flows.launch()  # resumes unfinished runs in the background
        if self.flow_triggers is not None:
            await self.flow_triggers.start()  # returns at once: loads in the background
        log.info(
            "gateway_started",
            version=_version(),
            recovered=recovered,
            connectors=sorted(self.connectors),
            database=redact(self.config.storage_url),
        )

    async def stop(self) -> None:  # noqa: PLR0912 - one step per optional service, in order
        for connector in self.connectors.values():
            with contextlib.suppress(Exception):
                await connector.stop()
        for task in self._pumps:
            task.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        self._pumps.clear()
        if self.flow_triggers is not None:
            await self.flow_triggers.stop()  # before the engine: no fire starts a run then
        # Turns first: one in flight may wait on the flow engine (a skill handed to a
        # worker, a flow it started), so the engine outlives the bus's drain; a turn
        # still running after it is cancelled as a shutdown and replayed at the next start.
        await self.gateway.stop()
        if self.flows is not None:
            await self.flows.close()  # releases DBOS: the next engine may start
        await self.outbox.stop()
        if self.relays is not None:
            await self.relays.stop()
        await self.models.close()
        if self.pruner is not None:
            await self.pruner.stop()
        if self.limits is not None:
            await self.limits.close()
        await self.skills.stop()
        await self.reminders.stop()
        if self.memory is not None:
            await self.memory.stop()
        if self.panel_mcp is not None:
            await self.panel_mcp.stop()
        if self.host_feed is not None:
            await self.host_feed.stop()
        if self.workspaces is not None:
            await self.workspaces.stop()
        if self.events is not None:
            await self.events.close()  # before the panels: no render is left running
        if self.panels is not None:
            await self.panels.stop()  # closes the sandbox engine
        if self.mcp_servers is not None:
            await self.mcp_servers.close()  # stops the servers that were started
        await self.storage.close()
        log.info("gateway_stopped")

    async def _pump(self, connector: Connector) -> None:
        """Publish a connector's events; tell the sender when one is refused."""
        async for event in connector.events():
            try:
                await self._publish(connector, event)
            except Exception:
                log.exception("publish_failed", channel=event.channel)

    async def _publish(self, connector: Connector, event: InboundEvent) -> None:
        try:
            answer = (await self.gateway.publish(event)).immediate
        except Rejected as exc:
            answer = exc.user_message
            if not answer:  # e.g. a stranger's repeat while pairing is pending
                stop_typing = getattr(connector, "stop_typing", None)
                if callable(stop_typing):
                    stop_typing(event.chat_id)
        if answer:
            await self.outbox.post(
                TextOut(channel=event.channel, chat_id=event.chat_id, text=answer)
            )


def _gateway(
    config: NexflowConfig,
    storage: SQLStorage,
    metrics: Metrics,
    middlewares: list[Middleware],
    runner: Callable[[Gateway], TurnRunner],
    approvals: ApprovalService,
) -> Gateway:
    """The gateway and its turn runner; answered approvals go back onto its lanes."""
    gateway = Gateway(
        storage,
        runner,
        metrics,
        config.bus,
        middlewares,
        max_message_chars=config.web.max_message_chars,
        replicas=SessionLeases(
            storage,
            replica_owner(config.home),
            ttl_s=config.replicas.lease_ttl_s,
            renew_s=config.replicas.renew_s,
            sweep_s=config.replicas.sweep_s,
        ),
    )
    approvals.resume = gateway.resume
    approvals.on_new = gateway.expiry.wake
    return gateway


async def _status_text(
    models: ModelResolver,
    skills: SkillsService,
    budgets: Budgets,
    queue_depth: Callable[[], int],
    lang: str,
    user_id: str,
) -> str:
    """The ``/status`` reply."""
    model = await models.status()
    level = await skills.runner.isolation_level()
    base = i18n.t(
        lang,
        "status",
        version=_version(),
        model=model.model or i18n.t(lang, "status_no_model"),
        queue=queue_depth(),
        skills=len(skills.registry.list(available_only=True)),
        isolation=level.value,
    )
    return "\n".join([base, *await budgets.status_lines(lang, user_id)])


async def _mcp_caller(permissions: PermissionsConfig, request: Any) -> ToolContext:
    """An MCP request's caller (authenticated like the API: a bearer token or loopback):
    their own panels, their role's skill permissions, nothing that needs a confirmation
    (MCP cannot ask)."""
    from nexflow.web.identity import caller_of, web_user

    caller = caller_of(request)
    user_id = await web_user(request)
    return ToolContext(
        user_id=user_id,
        session_id="mcp",
        channel="mcp",
        chat_id="mcp",
        permissions=permissions.granted(caller.role, user_id),
        role=caller.role,
    )


def _flow_triggers(
    config: NexflowConfig, flows: FlowService, budgets: Budgets
) -> FlowTriggers | None:
    """The flows' cron triggers; each fire is charged to the owner's background budget,
    like a reminder's."""
    if not config.flows.enabled:
        return None
    triggers = FlowTriggers(
        config.storage_url,
        flows,
        grace_s=config.flows.trigger_grace_s,
        budget=budgets.reminder_hook,
        wake_s=config.replicas.scheduler_wake_s,
    )
    flows.schedule = triggers
    return triggers


def _web_url(config: NexflowConfig) -> str:
    """Where people open the web UI (links in chat)."""
    return config.web.public_url or f"http://{config.web.host}:{config.web.port}"


def _version() -> str:
    from nexflow import __version__

    return __version__


# Chat connectors: a section under ``connectors:`` turns one on (``enabled: false`` turns it
# off again). Each module's ``create`` imports its SDK, so a disabled channel costs nothing.
CHAT_CONNECTORS = {
    "telegram": "connectors.telegram.factory",
    "discord": "connectors.discord.factory",
    "webhook": "connectors.webhook.factory",
    "email": "connectors.email.factory",
}


def chat_connectors(config: NexflowConfig) -> dict[str, Connector]:
    """Build the enabled chat connectors; a bad section raises ``ConfigError``."""
    import importlib

    built: dict[str, Connector] = {}
    for name, raw in config.connectors.items():
        section = dict(raw)
        if not section.pop("enabled", True):
            continue
        if name not in CHAT_CONNECTORS:
            known = ", ".join(sorted(CHAT_CONNECTORS))
            raise ConfigError(
                "configuration",
                [ConfigProblem(f"connectors.{name}", "unknown connector", f"use one of: {known}")],
            )
        factory = importlib.import_module(CHAT_CONNECTORS[name])
        built[name] = factory.create(section, config)
    return built


def _reminders_and_memory(
    config: NexflowConfig,
    storage: SQLStorage,
    outbox: OutboxDispatcher,
    budgets: Budgets,
    models: ModelResolver,
    gate: BudgetGate,
    metrics: Metrics,
    tools: ToolRegistry,
) -> tuple[ReminderService, MemoryService | None, ContextPager | None]:
    """Reminders (delivered through the outbox), long-term memory and context paging,
    with their tools added to ``tools``."""
    reminders = reminder_service(config, outbox, budgets)
    memory = build_memory(config)
    for tool in [*reminder_tools(reminders), *(memory_tools(memory) if memory else [])]:
        tools.add(tool)
    pager = None
    if memory is not None and config.memory.paging:
        pager = ContextPager(storage, memory, models, config.memory, gate=gate, metrics=metrics)
        for tool in page_tools(pager):
            tools.add(tool)
    return reminders, memory, pager


def build_application(config: NexflowConfig, logs: LogHub) -> Application:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    storage = storage_for(config)  # SQLite or Postgres: storage.url decides
    streams = StreamHub()
    loader = LiteLLMLoader()
    limits = shared_limits(config)  # None on SQLite: in-memory buckets and breakers
    models = ModelResolver(
        config.llm,
        loader,
        breaker=limits.breaker(config.llm.breaker) if limits else None,
        cache=limits.response_cache(config.llm.cache) if limits else None,  # else in memory
        on_retry=lambda exc, attempt, delay: log.warning(
            "llm_retry", model=exc.model, attempt=attempt, in_s=round(delay, 2), error=exc.message
        ),
        on_fallback=lambda failed, to, exc: log.warning(
            "llm_fallback", failed=failed, to=to, error=exc.message
        ),
    )
    budgets = Budgets(config.budgets, storage)
    gate = BudgetGate(models, budgets, config.llm)  # every model call goes through it
    base = tool_base(config, storage, metrics)  # what nexflow worker builds too
    tools, skills, panels, panel_mcp = base.tools, base.skills, base.panels, base.panel_mcp
    toolbox, mcp_servers, make_orchestrator = base.toolbox, base.mcp_servers, base.make_orchestrator
    orchestrator, outbox = (
        make_orchestrator(gate, toolbox),
        OutboxDispatcher(storage, config.outbox, metrics, claim_s=config.replicas.outbox_claim_s),
    )

    reminders, memory, pager = _reminders_and_memory(
        config, storage, outbox, budgets, models, gate, metrics, tools
    )
    workspaces = build_workspaces(config, storage, panels, gate)
    confirmations, flows, agents = _flows(
        config, storage, toolbox, make_orchestrator, gate, workspaces, outbox.notify, panels
    )
    if config.skills.run_on == "workers":  # the gate stays here, workers spawn the skill
        skills.run_tool.hand_off = WorkerSkills(
            flows.engine, poll_s=config.flows.queue_poll_s, concurrency=config.flows.concurrency
        )
    for tool in workspace_tools(workspaces, outbox.post, _web_url(config)):
        tools.add(tool)
    identity = Identity(storage, config.security)
    shared_rate = limits.rate_limiter(config.rate_limit) if limits else None
    middlewares: list[Middleware] = [
        LogContext(),
        MetricsMiddleware(metrics),
        identity,
        ControlCommands(confirmations),
        RateLimit(config.rate_limit, shared=shared_rate),
    ]

    def queue_depth() -> int:
        return gateway.queue_depth

    status_text = functools.partial(_status_text, models, skills, budgets, queue_depth)

    from connectors.web.connector import STATIC_DIR, WebConnector

    connectors: dict[str, Connector] = {
        "web": WebConnector(streams, config.web.ack_timeout_s),
        **chat_connectors(config),
    }
    elect_connectors(connectors, config.storage_url)  # one poller per bot across replicas
    drafts = {name: c.draft for name, c in connectors.items() if isinstance(c, Drafting)}
    commands = CommandRouter(
        skills.registry,
        tools,
        status_text,
        PanelChat(panels),
        users=storage,
        on_user_change=identity.forget,
        paged=pager.listing if pager is not None else None,
        workspaces=WorkspaceCommands(workspaces, outbox.post, _web_url(config), panels),
        skill_installs=ChatInstall(
            Installer.at_home(config.home, index=config.skills.index),
            on_change=skills.registry.areload,
        ),
        flows=flows,
    )

    gateway = _gateway(
        config,
        storage,
        metrics,
        middlewares,
        lambda gw: TurnRunner(
            storage,
            orchestrator,
            outbox,
            streams,
            metrics,
            confirmations,
            history_limit=config.agent.history_messages,
            max_attempts=config.bus.max_attempts,
            permissions=config.permissions,
            done=gw.turn_done,
            requeue=gw.resume,
            waiting=gw.waiting,
            commands=commands,
            drafts=drafts,
            budgets=budgets,
            pager=pager,
        ),
        confirmations,
    )

    application = Application(
        config,
        storage,
        gateway,
        outbox,
        connectors,
        metrics,
        toolbox,
        models,
        skills,
        reminders,
        mcp_servers=mcp_servers,  # closed by stop()
        flows=flows,  # closed by stop()
        flow_triggers=_flow_triggers(config, flows, budgets),  # stopped by stop()
        # /ws/events: each panel change rendered once, each patch event heard
        events=EventHub.listening_to(panels, workspaces.hooks if workspaces else None),
    )
    application.panels, application.panel_mcp = panels, panel_mcp
    application.limits = limits  # opened by start(), closed by stop()
    application.pruner = bucket_pruner([shared_rate], config.replicas.bucket_prune_s)
    application.relays = stream_relays(
        config.storage_url,
        config.redis.url,
        (streams, application.events),
        presence_s=config.replicas.presence_s,
    )
    if application.relays is not None:  # a Stop reaches a turn running on another replica
        application.relays.stops = gateway.remote_stops = RemoteStops(
            application.relays.bus, gateway.stop_turn, gateway.answers_stop, storage.get_session
        )
    application.memory, application.workspaces = memory, workspaces
    application.host_feed = HostFeed(panels, logs, config.panels.host_feed_s)
    if panel_mcp is not None:
        panel_mcp.extra_tools = lambda: (skills.read_tool, skills.run_tool)
        panel_mcp.context_for = functools.partial(_mcp_caller, config.permissions)
    token = config.web.token.get_secret_value() if config.web.token else None
    services = WebServices(
        gateway=gateway,
        storage=storage,
        models=models,
        metrics=metrics,
        streams=streams,
        logs=logs,
        auth=Authenticator(
            token, {name: t.get_secret_value() for name, t in config.web.users.items()}
        ),
        config=config.web,
        static_dir=STATIC_DIR,
        skills=skills,
        confirmations=confirmations,
        permissions=config.permissions,
        panels=panels,
        mcp=panel_mcp,
        notify=outbox.notify,
        budgets=budgets,
        workspaces=workspaces,
        webhooks=config.webhooks,
        tools=toolbox,
        mcp_servers=mcp_servers,
        nexflow_config=config,
        flows=flows,
        agents=agents,
        reminders=reminders,
        events=application.events,
        routes=tuple(
            route
            for connector in connectors.values()
            if isinstance(connector, ServesWeb)
            for route in connector.web_routes()
        ),
    )
    application.web = create_app(services, startup=application.start, shutdown=application.stop)
    return application
