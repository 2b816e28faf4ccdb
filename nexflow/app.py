"""The composition root: the one place the object graph is built and started.

Nothing else constructs long-lived services; everything is passed down from here.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import structlog
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from nexflow.bus.errors import Rejected
from nexflow.bus.events import TextOut
from nexflow.bus.middleware import (
    Identity,
    LogContext,
    MetricsMiddleware,
    Middleware,
    RateLimit,
)
from nexflow.bus.streams import StreamHub
from nexflow.config.model import NexflowConfig
from nexflow.gateway.connector import Connector
from nexflow.gateway.core import Gateway
from nexflow.gateway.outbox import OutboxDispatcher
from nexflow.llm.litellm_client import LiteLLMLoader
from nexflow.llm.resolver import ModelResolver
from nexflow.observability.logging import LogHub
from nexflow.observability.metrics import Metrics
from nexflow.orchestrator.agent import Orchestrator
from nexflow.orchestrator.persona import PersonaFiles
from nexflow.storage.sqlite import SQLiteStorage
from nexflow.tools.builtin import GetTime
from nexflow.tools.registry import ToolRegistry
from nexflow.web.app import WebServices, create_app
from nexflow.web.asgi import Authenticator

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
    llm_loader: LiteLLMLoader
    web: FastAPI = field(init=False)
    _pumps: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        self.config.home.mkdir(parents=True, exist_ok=True)
        self.config.workspace_dir.mkdir(parents=True, exist_ok=True)
        await self.storage.open()
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
        await self.llm_loader.close()
        await self.storage.close()
        log.info("gateway_stopped")

    async def _pump(self, connector: Connector) -> None:
        """Publish a connector's events; tell the sender when one is refused."""
        async for event in connector.events():
            try:
                await self.gateway.publish(event)
            except Rejected as exc:
                await self.storage.enqueue(
                    TextOut(channel=event.channel, chat_id=event.chat_id, text=exc.user_message)
                )
                self.outbox.notify()
            except Exception:
                log.exception("publish_failed", channel=event.channel)


def _version() -> str:
    from nexflow import __version__

    return __version__


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
    )
    tools = ToolRegistry([GetTime()])
    orchestrator = Orchestrator(
        models, tools, config.agent, PersonaFiles(config.workspace_dir), metrics
    )
    outbox = OutboxDispatcher(storage, config.outbox, metrics)
    middlewares: list[Middleware] = [
        LogContext(),
        MetricsMiddleware(metrics),
        Identity(storage, config.security),
        RateLimit(config.rate_limit),
    ]
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
    )
    from connectors.web.connector import STATIC_DIR, WebConnector

    connectors: dict[str, Connector] = {"web": WebConnector(streams)}
    application = Application(config, storage, gateway, outbox, connectors, metrics, tools, loader)
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
    )
    application.web = create_app(services, startup=application.start, shutdown=application.stop)
    return application
