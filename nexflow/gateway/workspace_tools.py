"""Workspace tools the model gets: ``workspace_overview`` and ``patch_propose``.

The model never changes a workspace: ``patch_propose`` makes a pending patch on a shadow
branch (the same path as ``/sync``) and puts its review card, with Accept / Reject, into
the chat the request came from. Only the user's answer merges it (docs/workspaces.md).
``patch_propose`` is declared ``write`` (it stores a pending patch and posts a card): after
untrusted content the trust gate asks first, and the patch's summary then starts with
``[after untrusted content from …]`` so the review card says it too (docs/trust.md).
A flow is a file patch too (``flows/<name>.yaml``): the card and the tool's answer name
what does not load (``nexflow/gateway/flow_patches.py``).
Both take an optional ``workspace`` (one of the user's named workspaces; the default one
when omitted); a ``panel:<id>`` patch always goes to the workspace the panel is in.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from nexflow.bus.events import Outbound
from nexflow.gateway.patch_review import review_out
from nexflow.tools.base import ToolContext, ToolError, ToolResult, ToolSpec
from nexflow.workspace.api import WorkspaceError, Workspaces

MAX_CONTENT_CHARS = 200_000


WORKSPACE_ARG = {
    "type": "string",
    "description": "One of the user's workspaces (omit for the default one)",
}


def _refused(exc: WorkspaceError) -> ToolError:
    hint = f" ({exc.hint})" if exc.hint else ""
    return ToolError(f"{exc.message}{hint}")


def _workspace(args: Mapping[str, Any]) -> str | None:
    value = args.get("workspace")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ToolError("'workspace' must be a string")
    return value


class WorkspaceOverviewTool:
    """The user's workspace as the Nexus Object Graph: what exists and how it connects."""

    spec = ToolSpec(
        name="workspace_overview",
        deferred=True,
        description=(
            "What the user's workspace holds (panels, their state keys and tools, notes, "
            "entities) and how they connect. Read it before proposing a patch."
        ),
        parameters={"type": "object", "properties": {"workspace": WORKSPACE_ARG}},
    )

    def __init__(self, workspaces: Workspaces) -> None:
        self._workspaces = workspaces

    async def run(self, args: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        try:
            graph = await self._workspaces.nog(ctx.user_id, _workspace(args))
        except WorkspaceError as exc:
            raise _refused(exc) from exc
        return ToolResult(graph.to_context())


class PatchProposeTool:
    """Proposes one change to a panel or file as a pending patch the user reviews."""

    spec = ToolSpec(
        name="patch_propose",
        deferred=True,
        description=(
            "Propose a change to the user's workspace. Nothing changes until the user "
            "accepts the patch in the chat. target: 'panel:<id>' or 'file:<path>'. "
            'content for a panel: JSON such as {"state": {"key": value}} (replace keys), '
            '{"append": {"list_key": [items]}} or {"nxml": "<Panel ...>"}; for a file: '
            "its whole new text. A panel's patch goes to the workspace the panel is in; "
            "a file's to 'workspace'. A flow is the file 'flows/<name>.yaml' of the "
            "default workspace: new and changed flows are proposed this way too."
        ),
        parameters={
            "type": "object",
            "properties": {
                "target": {"type": "string"},
                "content": {"type": "string"},
                "summary": {"type": "string", "description": "One line: what and why."},
                "workspace": WORKSPACE_ARG,
            },
            "required": ["target", "content", "summary"],
        },
        effects=frozenset({"write"}),
    )

    def __init__(
        self,
        workspaces: Workspaces,
        post: Callable[[Outbound], Awaitable[int]],
        web_url: str,
    ) -> None:
        self._workspaces = workspaces
        self._post = post
        self._web_url = web_url

    async def run(self, args: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        target, content, summary = (args.get(k) for k in ("target", "content", "summary"))
        if not isinstance(target, str) or not isinstance(summary, str):
            raise ToolError("'target' and 'summary' must be strings")
        if isinstance(content, dict):  # models often send the JSON itself, not a string
            content = json.dumps(content, ensure_ascii=False)
        if not isinstance(content, str):
            raise ToolError("'content' must be a string (JSON text for a panel)")
        if len(content) > MAX_CONTENT_CHARS:
            raise ToolError(f"'content' is longer than {MAX_CONTENT_CHARS} characters")
        workspace = _workspace(args)
        summary = summary.strip()
        if ctx.tainted:
            summary = f"[after untrusted content from {', '.join(ctx.tainted)}] {summary}"
        try:
            patch = await self._workspaces.propose(
                ctx.user_id,
                target,
                content,
                summary[:200],
                "chat",
                workspace,
                idempotency_key=ctx.idempotency_key,  # a flow step's: proposed once
            )
            diff = await self._workspaces.diff(patch.id)
        except WorkspaceError as exc:
            raise _refused(exc) from exc
        await self._post(
            review_out(
                diff,
                channel=ctx.channel,
                chat_id=ctx.chat_id,
                session_id=ctx.session_id or None,
                web_url=self._web_url,
            )
        )
        found = ""
        if diff.problems:
            found = " The review shows these problems; fix them with a new patch:\n" + (
                "\n".join(diff.problems)
            )
        return ToolResult(
            f"Patch {patch.id} ({patch.target}) is pending: the user sees it with Accept / "
            f"Reject buttons. Nothing has changed yet; do not claim it has.{found}",
            data={**patch.to_json(), "problems": list(diff.problems)},
        )


def workspace_tools(
    workspaces: Workspaces,
    post: Callable[[Outbound], Awaitable[int]],
    web_url: str,
) -> list[WorkspaceOverviewTool | PatchProposeTool]:
    return [WorkspaceOverviewTool(workspaces), PatchProposeTool(workspaces, post, web_url)]
