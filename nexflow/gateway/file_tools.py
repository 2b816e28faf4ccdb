"""``send_file``: the model sends a file of the workspace to the user's chat.

The file goes out after the turn's reply, as its own message (a ``FileOut``: a document in
Telegram, an attachment in Discord and in the email thread), from the outbox in the same
transaction as the reply, so it is sent exactly once. Only a regular file inside the
workspace (no ``..``, no symlink out of it) up to ``max_bytes`` is accepted; the
channel's own limits apply on delivery. The recipient is the user who asked, in the chat
they asked in, so the call is not egress: it sends nothing to anyone else.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nexflow.tools.base import Attachment, ToolContext, ToolError, ToolResult, ToolSpec

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
MAX_CAPTION = 1000


class SendFileTool:
    spec = ToolSpec(
        name="send_file",
        deferred=True,
        description=(
            "Send a file from the workspace to this chat as an attachment, after your reply. "
            "path: relative to the workspace."
        ),
        parameters={
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "caption": {"type": "string", "description": "One line shown with the file."},
            },
            "required": ["path"],
        },
    )

    def __init__(self, workspace: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._workspace = workspace
        self._max_bytes = max_bytes

    async def run(self, args: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        raw, caption = args.get("path"), args.get("caption") or ""
        if not isinstance(raw, str) or not raw.strip() or "\x00" in raw:
            raise ToolError("'path' must be a file's path inside the workspace")
        if not isinstance(caption, str):
            raise ToolError("'caption' must be text")
        root = self._workspace.resolve()
        path = (root / raw.strip()).resolve()
        if not path.is_relative_to(root):
            raise ToolError(f"{raw!r} is outside the workspace; only its files can be sent")
        if not path.is_file():
            raise ToolError(f"no file {raw!r} in the workspace")
        size = path.stat().st_size
        if size > self._max_bytes:
            raise ToolError(
                f"{raw!r} is {_size(size)}, over the {_size(self._max_bytes)} a file may have"
            )
        where = path.relative_to(root).as_posix()
        return ToolResult(
            f"{where} ({_size(size)}) will be sent after your reply; do not paste its content.",
            data={"path": where, "bytes": size},
            files=(Attachment(str(path), caption[:MAX_CAPTION]),),
        )


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / 1024 / 1024:.1f} MB"
