"""The composition root: the one place the object graph is built and started.

Nothing else constructs long-lived services; everything is passed down from here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection
from dataclasses import dataclass, field

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
from nexflow.config.model import NexflowConfig
from nexflow.gateway.commands import CommandRouter
from nexflow.gateway.commands_workspace import WorkspaceCommands
from nexflow.gateway.confirmations import ConfirmationService
from nexflow.gateway.connector import Connector, Drafting
from nexflow.gateway.control import ControlCommands
from nexflow.gateway.core import Gateway
from nexflow.gateway.outbox import OutboxDispatcher
from nexflow.gateway.workspace_tools import workspace_tools
from nexflow.llm.budget import Budgets
from nexflow.llm.litellm_client import LiteLLMLoader
from nexflow.llm.resolver import ModelResolver
from nexflow.memory import MemoryService, build_memory, memory_tools
from nexflow.memory.page_tools import page_tools
from nexflow.memory.paging import ContextPager
from nexflow.memory.userfiles import UserFiles
from nexflow.observability.logging import LogHub
from nexflow.observability.metrics import Metrics
from nexflow.orchestrator.agent import Orchestrator
from nexflow.orchestrator.persona import PersonaFiles
from nexflow.panels.runtime import PanelService
from nexflow.panels.runtime.chat import PanelChat, PanelListTool, PanelOpenTool
from nexflow.panels.runtime.feeds import HostFeed
from nexflow.panels.runtime.mcp_endpoint import LazyMCPEndpoint
from nexflow.panels.runtime.wiring import build_panels
from nexflow.skills.service import SkillsService, build_skills
from nexflow.storage.sqlite import SQLiteStorage
from nexflow.tasks import ReminderService, reminder_tools
from nexflow.tools.base import ToolContext
from nexflow.tools.builtin import GetTime
from nexflow.tools.registry import ToolRegistry
from nexflow.web.app import WebServices, create_app
from nexflow.web.asgi import Authenticator
from nexflow.workspace.lazy import LazyWorkspaces
from nexflow.workspace.wiring import build_workspaces

log = structlog.get_logger("nexflow.app")


@dataclass
class Application:
    config: NexflowConfig
    storage: SQLiteStorage
    gateway: Gateway
    outbox: OutboxDispatcher
    connectors: dict[str, Connector]
    metrics: Metrics
    tools: ToolRegistry
    models: ModelResolver
    skills: SkillsService
    reminders: ReminderService
    panels: PanelService | None = None
    panel_mcp: LazyMCPEndpoint | None = None
    host_feed: HostFeed | None = None
    memory: MemoryService | None = None
    workspaces: LazyWorkspaces | None = None
    web: FastAPI = field(init=False)
    _pumps: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        self.config.home.mkdir(parents=True, exist_ok=True)
        self.config.workspace_dir.mkdir(parents=True, exist_ok=True)
        await self.storage.open()
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
        log.info(
            "gateway_started",
            version=_version(),
            recovered=recovered,
            connectors=sorted(self.connectors),
            database=str(self.config.database_path),
        )

    async def stop(self) -> None:
        for connector in self.connectors.values():
            with contextlib.suppress(Exception):
                await connector.stop()
        for task in self._pumps:
            task.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        self._pumps.clear()
        await self.gateway.stop()
        await self.outbox.stop()
        await self.models.close()
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
        if self.panels is not None:
            await self.panels.stop()  # closes the sandbox engine
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


def build_application(config: NexflowConfig, logs: LogHub) -> Application:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    storage = SQLiteStorage(config.database_path, config.storage.busy_timeout_ms)
    streams = StreamHub()
    loader = LiteLLMLoader()
    models = ModelResolver(
        config.llm,
        loader,
        on_retry=lambda exc, attempt, delay: log.warning(
            "llm_retry", model=exc.model, attempt=attempt, in_s=round(delay, 2), error=exc.message
        ),
        on_fallback=lambda failed, to, exc: log.warning(
            "llm_fallback", failed=failed, to=to, error=exc.message
        ),
    )
    budgets = Budgets(config.budgets, storage)
    tools = ToolRegistry([GetTime()])
    skills = build_skills(config, storage, tools)
    panels, panel_mcp = build_panels(config, storage, tools)
    tools.add(PanelOpenTool(panels))
    tools.add(PanelListTool(panels))
    user_files = UserFiles(config.workspace_dir, config.memory.prompt_file_chars)

    async def user_context(user_id: str, used: Collection[str]) -> str:
        def hinted() -> set[str]:
            return {s.name for s in skills.registry.list(available_only=True)} | set(used)

        return await user_files.section(user_id, hinted)

    orchestrator = Orchestrator(
        models,
        tools,
        config.agent,
        PersonaFiles(config.workspace_dir),
        metrics,
        context_sections=skills.prompt_section,
        user_context=user_context,
    )
    outbox = OutboxDispatcher(storage, config.outbox, metrics)

    async def deliver(channel: str, chat_id: str, session_id: str, text: str) -> None:
        await outbox.post(
            TextOut(channel=channel, chat_id=chat_id, session_id=session_id or None, text=text)
        )

    reminders = ReminderService(config.database_path, deliver, budget=budgets.reminder_hook)
    for tool in reminder_tools(reminders):
        tools.add(tool)
    memory = build_memory(config)
    for tool in memory_tools(memory) if memory is not None else []:
        tools.add(tool)
    pager = None
    if memory is not None and config.memory.paging:
        pager = ContextPager(
            storage, memory, models, config.memory, budgets=budgets, metrics=metrics
        )
        for tool in page_tools(pager):
            tools.add(tool)
    confirmations = ConfirmationService(storage, outbox.post, config.skills.confirm_timeout_s)
    workspaces = build_workspaces(config, storage, panels, models, budgets)
    for tool in workspace_tools(workspaces, outbox.post, _web_url(config)):
        tools.add(tool)
    identity = Identity(storage, config.security)
    middlewares: list[Middleware] = [
        LogContext(),
        MetricsMiddleware(metrics),
        identity,
        ControlCommands(confirmations),
        RateLimit(config.rate_limit),
    ]

    async def status_text(lang: str, user_id: str) -> str:
        model = await models.status()
        level = await skills.runner.isolation_level()
        base = i18n.t(
            lang,
            "status",
            version=_version(),
            model=model.model or i18n.t(lang, "status_no_model"),
            queue=gateway.queue_depth,
            skills=len(skills.registry.list(available_only=True)),
            isolation=level.value,
        )
        return "\n".join([base, *await budgets.status_lines(lang, user_id)])

    from connectors.web.connector import STATIC_DIR, WebConnector

    connectors: dict[str, Connector] = {"web": WebConnector(streams), **chat_connectors(config)}
    drafts = {name: c.draft for name, c in connectors.items() if isinstance(c, Drafting)}
    gateway = Gateway(
        storage,
        orchestrator,
        outbox,
        streams,
        metrics,
        config.bus,
        middlewares,
        history_limit=config.agent.history_messages,
        max_message_chars=config.web.max_message_chars,
        permissions=config.permissions,
        confirmations=confirmations,
        drafts=drafts,
        budgets=budgets,
        pager=pager,
        commands=CommandRouter(
            skills.registry,
            tools,
            status_text,
            PanelChat(panels),
            users=storage,
            on_user_change=identity.forget,
            paged=pager.listing if pager is not None else None,
            workspaces=WorkspaceCommands(workspaces, outbox.post, _web_url(config), panels),
        ),
    )

    application = Application(
        config, storage, gateway, outbox, connectors, metrics, tools, models, skills, reminders
    )
    application.panels, application.panel_mcp = panels, panel_mcp
    application.memory, application.workspaces = memory, workspaces
    application.host_feed = HostFeed(panels, logs, config.panels.host_feed_s)
    if panel_mcp is not None:
        # MCP clients authenticate like the API (bearer token or loopback): the owner's skill
        # permissions, but nothing that needs a confirmation (MCP cannot ask).
        panel_mcp.extra_tools = lambda: (skills.read_tool, skills.run_tool)
        panel_mcp.context = ToolContext(
            user_id="mcp",
            session_id="mcp",
            channel="mcp",
            chat_id="mcp",
            permissions=config.permissions.granted("owner", None),
        )
    token = config.web.token.get_secret_value() if config.web.token else None
    services = WebServices(
        gateway=gateway,
        storage=storage,
        models=models,
        metrics=metrics,
        streams=streams,
        logs=logs,
        auth=Authenticator(token),
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
    )
    application.web = create_app(services, startup=application.start, shutdown=application.stop)
    return application
