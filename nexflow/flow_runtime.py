"""What runs flow steps, built from the configuration: shared by the gateway's composition
root (:mod:`nexflow.app`) and ``nexflow worker`` (:mod:`nexflow.worker`).

- :func:`orchestrator`, :func:`flow_services` and :func:`reminder_service` are the pieces
  both build the same way: an agent turn's orchestrator; the approvals, flow service
  (with its :class:`~nexflow.gateway.flow_host.GatewayFlowHost`) and named agents; the
  reminder service on the shared job table.
- :func:`build_flow_runtime` is the worker's whole graph: storage, the model resolver
  behind the one budget gate, the built-in tools, skills, panels, MCP servers, memory and
  workspaces, the reminder tools and the flow service — no web app, no chat connector,
  no outbox *delivery*: what a step posts (an approval card, a workspace patch notice)
  is queued on the shared durable outbox, which the gateways deliver.

The worker's reminder service is *paused*: ``reminder_add``/``list``/``cancel`` write and
read the shared ``reminder_jobs`` table in Postgres (with the step's idempotency key, as
in a gateway), and never fire; the gateways' schedulers find the new job within
``replicas.scheduler_wake_s``, fire it and deliver it through the shared outbox.

Not on a worker (chat-only): context paging tools (they page a chat session) and chat
commands. A flow step that calls one gets "no tool named …".
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from nexflow.bus.events import TextOut
from nexflow.config.model import NexflowConfig
from nexflow.gateway.agents import AgentService
from nexflow.gateway.approvals import ApprovalService
from nexflow.gateway.file_tools import SendFileTool
from nexflow.gateway.flow_host import GatewayFlowHost, OrchestratorFactory
from nexflow.gateway.flow_patches import FlowPatches
from nexflow.gateway.flows import FlowService
from nexflow.gateway.outbox import OutboxDispatcher
from nexflow.gateway.panel_flows import PanelFlows
from nexflow.gateway.workspace_tools import workspace_tools
from nexflow.llm.budget import Budgets
from nexflow.llm.gate import BudgetGate
from nexflow.llm.litellm_client import LiteLLMLoader
from nexflow.llm.resolver import ModelResolver
from nexflow.mcp_client import McpServers, McpToolProvider
from nexflow.memory import MemoryService, build_memory, memory_tools
from nexflow.memory.userfiles import UserFiles
from nexflow.observability.metrics import Metrics
from nexflow.orchestrator.agent import ModelSource, Orchestrator
from nexflow.orchestrator.persona import PersonaFiles
from nexflow.panels.runtime import PanelService
from nexflow.panels.runtime.chat import PanelListTool, PanelOpenTool
from nexflow.panels.runtime.wiring import build_panels
from nexflow.scale.wiring import SharedLimits, shared_limits
from nexflow.skills.service import SkillsService, build_skills
from nexflow.storage.open import storage_for
from nexflow.storage.sql_storage import SQLStorage
from nexflow.tasks import ReminderService, reminder_tools
from nexflow.tools.builtin import GetTime
from nexflow.tools.registry import ToolRegistry
from nexflow.tools.toolset import Toolbox
from nexflow.trust import TrustGate
from nexflow.workspace.lazy import LazyWorkspaces
from nexflow.workspace.wiring import build_workspaces


def orchestrator(
    config: NexflowConfig,
    metrics: Metrics,
    sections: Callable[[], str],
    user_context: Callable[[str, Collection[str]], Any],
    models: ModelSource,
    tools: Toolbox,
    *,
    persona: str = "",
) -> Orchestrator:
    """An agent turn's orchestrator: chat turns use one, each flow agent node its own."""
    return Orchestrator(
        models,
        tools,
        config.agent,
        PersonaFiles(config.workspace_dir),
        metrics,
        context_sections=(
            sections if not persona else lambda: "\n\n".join(p for p in (sections(), persona) if p)
        ),
        user_context=user_context,
        gate=TrustGate(),
    )


def flow_services(
    config: NexflowConfig,
    storage: SQLStorage,
    toolbox: Toolbox,
    orchestrator: OrchestratorFactory,
    gate: BudgetGate,
    workspaces: LazyWorkspaces,
    notify: Callable[[], None],
    panels: PanelService,
    *,
    worker: bool = False,
) -> tuple[ApprovalService, FlowService, AgentService]:
    """The approvals (chat turns' and flow nodes'), the flow service with its host and
    the named agents (the same host's agent turn); flow approvals' answers go to the flow
    service, and a panel handler's ``run_flow`` starts its owner's flow through it.
    ``worker``: the flow service dequeues runs whatever ``flows.run_on`` says."""
    confirmations = ApprovalService(storage, config.skills.confirm_timeout_s)
    confirmations.notify = notify  # a flow's card is queued outside a turn
    host = GatewayFlowHost(storage, toolbox, orchestrator, gate, confirmations, config.permissions)
    # DBOS's database: flows.database_url, else the gateway's Postgres, else a SQLite file
    flows_config = config.flows.model_copy(update={"database_url": config.flows_database_url})
    flows = FlowService(flows_config, config.home, host, workspaces, storage, worker=worker)
    confirmations.on_flow_answer = flows.answer
    FlowPatches(flows).register(workspaces.hooks)  # the AI's flow changes are patches
    panels.flows = PanelFlows(flows)
    return confirmations, flows, AgentService(host, workspaces, storage)


def reminder_service(
    config: NexflowConfig, outbox: OutboxDispatcher, budgets: Budgets, *, paused: bool = False
) -> ReminderService:
    """Reminders on the storage's job table, delivered through the outbox and charged to
    the background budget. ``paused`` (a worker): the service adds, lists and cancels,
    and the gateways' schedulers fire (module docstring)."""

    async def deliver(channel: str, chat_id: str, session_id: str, text: str) -> None:
        await outbox.post(
            TextOut(channel=channel, chat_id=chat_id, session_id=session_id or None, text=text)
        )

    return ReminderService(
        config.storage_url,
        deliver,
        budget=budgets.reminder_hook,
        wake_s=config.replicas.scheduler_wake_s,
        paused=paused,
    )


@dataclass
class FlowRuntime:
    """A worker's object graph (see the module docstring); :meth:`start` opens it in the
    gateway's order, :meth:`stop` closes it in reverse."""

    config: NexflowConfig
    storage: SQLStorage
    models: ModelResolver
    skills: SkillsService
    panels: PanelService
    mcp_servers: McpServers
    workspaces: LazyWorkspaces
    flows: FlowService
    memory: MemoryService | None = None
    limits: SharedLimits | None = None  # model breakers shared with the gateways
    reminders: ReminderService | None = None  # paused: adds jobs the gateways fire

    async def start(self) -> None:
        self.config.home.mkdir(parents=True, exist_ok=True)
        self.config.workspace_dir.mkdir(parents=True, exist_ok=True)
        await self.storage.open()
        if self.limits is not None:
            await self.limits.open()
        if self.reminders is not None:
            await self.reminders.start()  # after storage.open: the table is migrated
        await self.skills.start()
        if self.memory is not None:
            await self.memory.start()
        await self.panels.start()
        await self.workspaces.start()

    async def stop(self) -> None:
        await self.flows.close()  # DBOS first: no step is left calling what closes next
        await self.models.close()
        if self.limits is not None:
            await self.limits.close()
        await self.skills.stop()
        if self.memory is not None:
            await self.memory.stop()
        await self.workspaces.stop()
        await self.panels.stop()
        if self.reminders is not None:
            await self.reminders.stop()
        with contextlib.suppress(Exception):
            await self.mcp_servers.close()
        await self.storage.close()


@dataclass(frozen=True, slots=True)
class ToolBase:
    """What a gateway and a worker build alike: the built-in tools, skills, panels (with
    their MCP endpoint), the toolbox over them and the MCP servers, and the factory of
    turn orchestrators with the user's prompt files and skill hints."""

    tools: ToolRegistry
    skills: SkillsService
    panels: PanelService
    panel_mcp: Any
    toolbox: Toolbox
    mcp_servers: McpServers
    make_orchestrator: OrchestratorFactory


def tool_base(config: NexflowConfig, storage: SQLStorage, metrics: Metrics) -> ToolBase:
    tools = ToolRegistry([GetTime(), SendFileTool(config.workspace_dir)])
    skills = build_skills(config, storage, tools)
    panels, panel_mcp = build_panels(config, storage)
    servers = McpServers(config.mcp, log_dir=config.home / "mcp")
    toolbox = Toolbox(tools, [panels, McpToolProvider(servers)])
    tools.add(PanelOpenTool(panels))
    tools.add(PanelListTool(panels))
    user_files = UserFiles(config.workspace_dir, config.memory.prompt_file_chars)

    async def user_context(user_id: str, used: Collection[str]) -> str:
        def hinted() -> set[str]:
            return {s.name for s in skills.registry.list(available_only=True)} | set(used)

        return await user_files.section(user_id, hinted)

    # Chat turns use one; each flow agent node gets its own (its route, its allowlist).
    make = functools.partial(orchestrator, config, metrics, skills.prompt_section, user_context)
    return ToolBase(tools, skills, panels, panel_mcp, toolbox, servers, make)


def build_flow_runtime(config: NexflowConfig) -> FlowRuntime:
    """The flow host and everything it calls, for ``nexflow worker``: the same tools and
    rules as the gateway's flow steps (``nexflow.app.build_application``)."""
    metrics = Metrics(CollectorRegistry())
    storage = storage_for(config)
    limits = shared_limits(config)
    breaker = limits.breaker(config.llm.breaker) if limits else None
    cache = limits.response_cache(config.llm.cache) if limits else None
    models = ModelResolver(config.llm, LiteLLMLoader(), breaker=breaker, cache=cache)
    budgets = Budgets(config.budgets, storage)
    gate = BudgetGate(models, budgets, config.llm)  # every model call goes through it
    base = tool_base(config, storage, metrics)  # its panel MCP endpoint is the gateways'
    tools, skills, panels, toolbox = base.tools, base.skills, base.panels, base.toolbox
    servers, make_orchestrator = base.mcp_servers, base.make_orchestrator
    # Never started here: posting queues on the shared outbox; the gateways deliver.
    outbox = OutboxDispatcher(storage, config.outbox, metrics)
    memory = build_memory(config)
    reminders = reminder_service(config, outbox, budgets, paused=True)
    for tool in [*reminder_tools(reminders), *(memory_tools(memory) if memory else [])]:
        tools.add(tool)
    workspaces = build_workspaces(config, storage, panels, gate)
    _, flows, _ = flow_services(
        config,
        storage,
        toolbox,
        make_orchestrator,
        gate,
        workspaces,
        outbox.notify,
        panels,
        worker=True,
    )
    web_url = config.web.public_url or f"http://{config.web.host}:{config.web.port}"
    for tool in workspace_tools(workspaces, outbox.post, web_url):
        tools.add(tool)
    return FlowRuntime(
        config,
        storage,
        models,
        skills,
        panels,
        servers,
        workspaces,
        flows,
        memory=memory,
        limits=limits,
        reminders=reminders,
    )


__all__ = [
    "FlowRuntime",
    "build_flow_runtime",
    "flow_services",
    "orchestrator",
    "reminder_service",
]
