"""Flows: DAGs of tool, agent, condition, fork/merge, transform, approval, wait and
sub-flow nodes, loaded from YAML and run durably on DBOS. See ``docs/flows.md``.

Modules: ``model`` (the validated flow), ``loader`` (YAML with line:column errors),
``expr`` (the safe expression evaluator), ``graph`` (edges, cycle check, scheduling
rule), ``host`` (the :class:`FlowHost` seam to the gateway), ``nodes`` (one node
attempt), ``engine`` (:class:`FlowEngine`), ``status`` (run/node status records),
``triggers`` (cron triggers: checking a line, the next fire, a fire's run id);
``durable`` and ``reader`` import DBOS and are loaded only when an engine first runs.

Exceptions (``nexflow.flows.errors``): :class:`FlowError` is the root and its
``message`` is user-safe; :class:`FlowInvalid` (with ``issues``: file, line, column,
message), :class:`ExprError`, :class:`RunNotFound`, :class:`RunControlError`,
:class:`RunFailed` (how a failed run reports why), :class:`EngineUnavailable`.

Importing this package imports no DBOS.
"""

from nexflow.flows.engine import FlowEngine
from nexflow.flows.errors import (
    EngineUnavailable,
    ExprError,
    FlowError,
    FlowInvalid,
    FlowIssue,
    RunControlError,
    RunFailed,
    RunNotFound,
)
from nexflow.flows.host import FlowHost, NodeResult, Origin, RunInfo
from nexflow.flows.loader import load_flow, load_flow_text
from nexflow.flows.model import Flow
from nexflow.flows.status import NodeStatus, RunStats, RunStatus, RunSummary

__all__ = [
    "EngineUnavailable",
    "ExprError",
    "Flow",
    "FlowEngine",
    "FlowError",
    "FlowHost",
    "FlowInvalid",
    "FlowIssue",
    "NodeResult",
    "NodeStatus",
    "Origin",
    "RunControlError",
    "RunFailed",
    "RunInfo",
    "RunNotFound",
    "RunStats",
    "RunStatus",
    "RunSummary",
    "load_flow",
    "load_flow_text",
]
