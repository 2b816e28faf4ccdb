"""The seam between the flow engine and the gateway.

The engine never imports the gateway: it calls a :class:`FlowHost` for every side effect
(tools, agents, approval cards, loading sub-flows). The gateway implements it; tests use
fakes. Side-effecting calls carry an ``idempotency_key`` (``<run id>:<node id>:<attempt>``)
because a durable step runs *at least* once: a crash after the call but before its
checkpoint repeats it, with the same key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from nexflow.flows.model import Flow


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a run was started: cards and notifications go back there."""

    channel: str = ""
    chat_id: str = ""
    session: str = ""


@dataclass(frozen=True, slots=True)
class RunInfo:
    """Who a run belongs to and where it talks back. ``run_id`` is the durable id.

    ``tainted`` and ``approved_by`` are the clearance of the node being called
    (:mod:`nexflow.flows.clearance`): the untrusted sources upstream of it, and the
    approval node that clears its confirmations ('' when none does). For a whole run
    they are its inputs' taint (a webhook's, a panel's) and nothing approved."""

    run_id: str
    flow: str
    owner: str
    origin: Origin = field(default_factory=Origin)
    tainted: tuple[str, ...] = ()
    approved_by: str = ""

    def to_data(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> RunInfo:
        return cls(
            run_id=str(data["run_id"]),
            flow=str(data["flow"]),
            owner=str(data["owner"]),
            origin=Origin(**dict(data.get("origin") or {})),
            tainted=tuple(str(s) for s in data.get("tainted") or ()),
            approved_by=str(data.get("approved_by") or ""),
        )


@dataclass(frozen=True, slots=True)
class NodeResult:
    """The result of one tool or agent call. ``output`` must be JSON-serialisable;
    ``error`` is a user-safe message when ``ok`` is false; ``untrusted`` names the
    sources of untrusted output the call saw (it taints the nodes downstream)."""

    ok: bool
    output: Any = None
    error: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    tool_calls: int = 0
    untrusted: tuple[str, ...] = ()


class FlowHost(Protocol):
    """What the engine needs from the gateway. Methods may be called concurrently."""

    async def call_tool(
        self,
        run: RunInfo,
        node: str,
        tool: str,
        args: Mapping[str, Any],
        idempotency_key: str,
    ) -> NodeResult:
        """Call one tool the run's owner may use; same key = same call (dedupe it)."""
        ...

    async def run_agent(
        self,
        run: RunInfo,
        node: str,
        prompt: str,
        tools: Sequence[str] | None,
        route: str | None,
        idempotency_key: str,
        *,
        agent: str | None = None,
    ) -> NodeResult:
        """Run an agent loop for the owner, charged through the one budget gate;
        ``agent`` names the owner's agent definition (its persona, tools, route, cap)."""
        ...

    async def ask(self, run: RunInfo, node: str, title: str, detail: str) -> None:
        """Post an approval card to ``run.origin``; the answer comes back through
        ``FlowEngine.answer``. May repeat after a crash: dedupe on (run_id, node)."""
        ...

    def load_flow(self, owner: str, name: str) -> Flow:
        """Load the owner's flow ``name`` (for sub-flows); raise ``FlowError`` if absent."""
        ...
