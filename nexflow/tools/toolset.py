"""Toolsets per turn: the tools one caller is offered, never one registry for everyone.

:class:`Toolbox` is built once by the composition root from the shared built-ins (a
:class:`~nexflow.tools.registry.ToolRegistry`: time, reminders, memory, skills, workspace
tools, ``panel_open``…) and :class:`ToolProvider` s whose tools belong to someone (the
panels of each user). ``Toolbox.tools_for(ctx)`` composes the built-ins with the tools the
providers give *this caller*; the result, a :class:`Toolset`, is what the model of a turn
is offered and the only place a tool call of that turn is looked up. A name that is not
in the caller's toolset is an :class:`~nexflow.tools.base.UnknownTool`, whoever owns it;
providers check ownership again when the tool runs. A provider that is also a
:class:`ToolResolver` may answer for a name it did not list (an MCP server's
``<server>__<tool>`` before the server has started): callable, never offered.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import Protocol, runtime_checkable

from nexflow.tools.base import Tool, ToolContext, ToolSpec, UnknownTool
from nexflow.tools.registry import ToolRegistry


class ToolProvider(Protocol):
    """Contributes the tools that belong to the caller (e.g. the caller's own panels)."""

    def tools_for(self, ctx: ToolContext) -> Iterable[Tool]: ...


@runtime_checkable
class ToolResolver(Protocol):
    """A provider that resolves, for this caller, a tool it does not list (or None)."""

    def resolve(self, name: str, ctx: ToolContext) -> Tool | None: ...


class Toolset:
    """One caller's tools, by name. Built-ins win a name clash (a provider cannot shadow
    ``run_skill``); later duplicates are dropped. ``resolve`` answers for a name that is
    not listed (it is callable but not in :meth:`specs`)."""

    __slots__ = ("_resolve", "_tools")

    def __init__(
        self, tools: Iterable[Tool], resolve: Callable[[str], Tool | None] | None = None
    ) -> None:
        self._tools: dict[str, Tool] = {}
        self._resolve = resolve
        for tool in tools:
            self._tools.setdefault(tool.spec.name, tool)

    def get(self, name: str) -> Tool:
        tool = self._tools.get(name)
        if tool is None and self._resolve is not None:
            tool = self._resolve(name)
        if tool is None:
            known = ", ".join(sorted(self._tools)) or "none"
            raise UnknownTool(f"no tool named {name!r} (available: {known})")
        return tool

    def specs(self, hidden: Collection[str] = ()) -> list[ToolSpec]:
        return [t.spec for name, t in self._tools.items() if name not in hidden]

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)


class Toolbox:
    """The built-ins everyone may be offered, plus per-caller providers."""

    def __init__(self, builtins: ToolRegistry, providers: Sequence[ToolProvider] = ()) -> None:
        self.builtins = builtins
        self._providers = list(providers)

    def add_provider(self, provider: ToolProvider) -> None:
        self._providers.append(provider)

    def tools_for(self, ctx: ToolContext) -> Toolset:
        tools: list[Tool] = list(self.builtins)
        for provider in self._providers:
            tools.extend(provider.tools_for(ctx))
        resolvers = [p for p in self._providers if isinstance(p, ToolResolver)]

        def resolve(name: str) -> Tool | None:
            for resolver in resolvers:
                if (tool := resolver.resolve(name, ctx)) is not None:
                    return tool
            return None

        return Toolset(tools, resolve if resolvers else None)
