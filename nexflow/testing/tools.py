"""Small tools for tests that need to see who a call ran as."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nexflow.tools.base import ToolContext, ToolResult, ToolSpec


class WhoAmI:
    """Records the user each call runs as, and answers with it."""

    def __init__(self) -> None:
        self.spec = ToolSpec("whoami", "the caller's user id")
        self.users: list[str] = []

    async def run(self, args: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        self.users.append(ctx.user_id)
        return ToolResult(ctx.user_id)
