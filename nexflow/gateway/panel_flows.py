"""Panels start flows through :class:`FlowService` (``$emit('run_flow', ...)``, docs/flows.md).

The :class:`~nexflow.panels.runtime.flows.FlowStarter` the composition root gives the
panel service. A run starts as the panel's owner, through :meth:`FlowService.start`: the
owner's flow file, inputs checked against the flow's ``inputs``, the owner's budget gate
and ``flows.default_budget_tokens``, tainted by ``panel:<id>`` (the same approval rule as
a webhook's run). A run id already started answers that run without starting it again or
touching its taint (a retried press). Flow errors become :class:`FlowRefused` with their
user-safe message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nexflow.flows.errors import FlowError, FlowInvalid, RunNotFound
from nexflow.flows.host import Origin
from nexflow.gateway.flows import FlowService
from nexflow.panels.runtime.flows import FlowRefused


class PanelFlows:
    """Starts the flows of a panel's owner for the panel service."""

    def __init__(self, flows: FlowService) -> None:
        self._flows = flows

    async def start_flow(
        self,
        owner: str,
        flow: str,
        args: Mapping[str, Any],
        *,
        run_id: str,
        source: str,
        channel: str,
        chat_id: str,
    ) -> str:
        try:
            try:
                return (await self._flows.run(owner, run_id)).run_id  # started already
            except RunNotFound:
                pass
            return await self._flows.start(
                owner,
                flow,
                args,
                Origin(channel, chat_id),
                run_id=run_id,
                tainted_by=source,  # the panel's state is not taint-tracked
            )
        except FlowInvalid as exc:
            issues = "; ".join(str(i) for i in exc.issues[:3])
            raise FlowRefused(f"flow '{flow}' is not valid: {issues}") from exc
        except FlowError as exc:
            raise FlowRefused(exc.message) from exc


__all__ = ["PanelFlows"]
