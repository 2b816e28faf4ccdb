"""The flow model: a validated, frozen description of a DAG of nodes.

A :class:`Flow` is built by :mod:`nexflow.flows.loader` from YAML (which adds line and
column to every error) and is JSON round-trippable (``to_data`` / ``Flow.model_validate``)
so the engine can store it in the durable run's input: a run keeps the definition it
started with even if the file changes or disappears.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from nexflow.backoff import Backoff
from nexflow.flows import triggers

NODE_ID = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
FLOW_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"

NodeType = Literal[
    "tool", "agent", "condition", "fork", "merge", "transform", "approval", "wait", "flow"
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Retry(_Frozen):
    """Retry policy: ``tries`` attempts in all; the delay before attempt n+1 is
    ``backoff_s * factor**(n-1)``, capped at ``max_backoff_s``; the waits are durable."""

    tries: int = Field(default=1, ge=1, le=20)
    backoff_s: float = Field(default=1.0, ge=0, le=86400)
    factor: float = Field(default=2.0, ge=1, le=10)
    max_backoff_s: float = Field(default=3600.0, ge=0)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based)."""
        return Backoff(self.backoff_s, self.max_backoff_s, factor=self.factor).delay(attempt)


class _NodeBase(_Frozen):
    needs: list[str] = Field(default_factory=list)
    description: str = ""
    retry: Retry = Field(default_factory=Retry)
    timeout_s: float | None = Field(default=None, gt=0, le=7 * 86400)
    on_error: str | None = None  # a node id (error branch) or "continue"


class ToolNode(_NodeBase):
    """One tool (or skill) call through the host."""

    type: Literal["tool"]
    tool: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)


class AgentNode(_NodeBase):
    """An agent loop through the host: prompt, optional tool allowlist and model route.

    ``agent`` names a definition (``agents/<name>.yaml``) whose persona, tools, route and
    budget the node uses; the node's own ``tools`` and ``route`` override it."""

    type: Literal["agent"]
    prompt: str = Field(min_length=1)
    agent: str | None = Field(None, pattern=FLOW_NAME)
    tools: list[str] | None = None
    route: str | None = None


class ConditionNode(_NodeBase):
    """Routes to ``then`` when ``if`` is truthy, else to ``else``; the other is skipped."""

    type: Literal["condition"]
    if_: str = Field(alias="if", min_length=1)
    then: list[str] = Field(default_factory=list)
    else_: list[str] = Field(default_factory=list, alias="else")


class ForkNode(_NodeBase):
    """Explicit parallel fan-out: a no-op its dependents hang from."""

    type: Literal["fork"]


class MergeNode(_NodeBase):
    """Joins branches: ``all`` waits for every need, ``any`` runs on the first done."""

    type: Literal["merge"]
    strategy: Literal["all", "any"] = "all"


class TransformNode(_NodeBase):
    """Computes ``expr`` with the safe evaluator; its value is the node's output."""

    type: Literal["transform"]
    expr: str = Field(min_length=1)


class ApprovalNode(_NodeBase):
    """Posts a card and parks until answered; declined or expired counts as failed."""

    type: Literal["approval"]
    title: str = Field(min_length=1)
    detail: str = ""
    expires_s: float = Field(default=86400.0, gt=0, le=90 * 86400)


class WaitNode(_NodeBase):
    """A durable timer: ``seconds`` or ``until`` (ISO time with a zone)."""

    type: Literal["wait"]
    seconds: float | None = Field(default=None, ge=0, le=90 * 86400)
    until: datetime | None = None
    webhook: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> WaitNode:
        if self.webhook is not None:
            raise ValueError("wait for a webhook is not supported yet")
        if (self.seconds is None) == (self.until is None):
            raise ValueError("wait needs exactly one of 'seconds' or 'until'")
        if self.until is not None and self.until.tzinfo is None:
            raise ValueError("'until' needs a time zone (e.g. 2026-12-24T18:00:00+00:00)")
        return self


class SubFlowNode(_NodeBase):
    """Runs another flow (loaded by name through the host) as a child run."""

    type: Literal["flow"]
    flow: str = Field(pattern=FLOW_NAME)
    args: dict[str, Any] = Field(default_factory=dict)


Node = Annotated[
    ToolNode
    | AgentNode
    | ConditionNode
    | ForkNode
    | MergeNode
    | TransformNode
    | ApprovalNode
    | WaitNode
    | SubFlowNode,
    Field(discriminator="type"),
]


class InputSpec(_Frozen):
    """A declared input: JSON type, whether required, and a default."""

    type: Literal["string", "number", "integer", "boolean", "object", "array"] = "string"
    required: bool = False
    default: Any = None
    description: str = ""


class Trigger(_Frozen):
    """Start a run on a schedule: a cron line (5 fields, or 6 with leading seconds;
    weekday 0 or 7 = Sunday) read in ``timezone`` (IANA), with ``args`` as the inputs.
    Checked at load time (:mod:`nexflow.flows.triggers`)."""

    # timezone first: the cron check below reads it
    timezone: str = Field("UTC", min_length=1, max_length=64)
    cron: str = Field(min_length=1, max_length=200)
    args: dict[str, Any] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return triggers.check_zone(value)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str, info: ValidationInfo) -> str:
        zone = info.data.get("timezone")
        if zone is not None:  # else the zone's own error is reported
            triggers.parse(value, zone)
        return " ".join(value.split())


class Flow(_Frozen):
    """A validated flow. ``nodes`` keeps file order; ``triggers`` are cron schedules."""

    name: str = Field(pattern=FLOW_NAME)
    description: str = ""
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    budget_tokens: int | None = Field(default=None, gt=0)
    triggers: list[Trigger] = Field(default_factory=list, max_length=20)
    nodes: dict[str, Node] = Field(min_length=1)

    def to_data(self) -> dict[str, Any]:
        """A JSON-ready dict that ``Flow.model_validate`` turns back into this flow."""
        return self.model_dump(mode="json", by_alias=True, exclude_defaults=True)


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def bind_inputs(flow: Flow, args: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Apply defaults and check ``args`` against ``flow.inputs``: (values, problems)."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key in args:
        if key not in flow.inputs:
            problems.append(f"unknown input '{key}'")
    for key, spec in flow.inputs.items():
        if key not in args:
            if spec.required:
                problems.append(f"missing required input '{key}'")
            values[key] = spec.default
            continue
        value = args[key]
        kinds = _JSON_TYPES[spec.type]
        wrong_bool = isinstance(value, bool) and spec.type != "boolean"
        if not isinstance(value, kinds) or wrong_bool:
            problems.append(f"input '{key}' must be a {spec.type}")
        values[key] = value
    return values, problems
