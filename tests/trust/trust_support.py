"""Small tools and contexts for the trust tests (imported by the test modules)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nexflow.tools.base import Effect, ToolContext, ToolResult, ToolSpec


@dataclass
class FakeTool:
    """A tool that records its runs and answers with ``output``."""

    spec: ToolSpec
    output: str = "ok"
    untrusted_result: bool = False
    runs: list[Mapping[str, Any]] = field(default_factory=list)

    async def run(self, args: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        self.runs.append(args)
        return ToolResult(self.output, untrusted=self.untrusted_result)


def tool(
    name: str,
    *effects: Effect,
    untrusted: bool = False,
    dangerous: bool = False,
    output: str = "ok",
) -> FakeTool:
    return FakeTool(
        ToolSpec(
            name=name,
            description=name,
            effects=frozenset(effects),
            untrusted_output=untrusted,
            dangerous=dangerous,
        ),
        output,
    )


class Asker:
    """A ``confirm`` that records the cards and answers from a script."""

    def __init__(self, *answers: bool) -> None:
        self.answers = list(answers)
        self.cards: list[tuple[str, str]] = []

    async def __call__(self, title: str, detail: str) -> bool:
        self.cards.append((title, detail))
        return self.answers.pop(0)


def ctx(tainted: tuple[str, ...] = (), confirm: Asker | None = None) -> ToolContext:
    return ToolContext(
        user_id="alice",
        session_id="s1",
        channel="web",
        chat_id="c1",
        confirm=confirm,
        tainted=tainted,
    )
