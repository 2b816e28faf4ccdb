"""The one place that decides what a tool call does: :func:`effects_of`.

A call's :class:`Effects` say whether it writes (changes state the user keeps), sends
data out (egress), and whether its output is untrusted (may carry instructions that are
not the user's). They come from the tool's :class:`~nexflow.tools.base.ToolSpec`
(``effects``, ``untrusted_output``), which declares the worst case, unless the tool
implements :class:`DynamicEffects`: then its ``effects_for(args)`` answers for this call
(``run_skill`` does: its effects depend on the skill it runs). A hook that fails falls
back to the spec.

Skills are mapped here too (:func:`skill_effects`), from their declared permissions:

==============  =======  ======  =================
permission      write    egress  untrusted output
==============  =======  ======  =================
``network``              yes     yes
``shell``       yes      yes     yes
``filesystem``  yes
``secrets``     (nothing by itself: it still needs ``network`` to send anything)
==============  =======  ======  =================

The bundled skills (``skills/`` beside the package, never a same-named skill from
another root) are known more precisely: ``file-read`` reads, and its output is untrusted
unless the path is relative and stays inside the workspace; ``file-write`` writes;
``http-request`` is egress with untrusted output (a GET carries data out in its URL);
``shell-run`` is write, egress and untrusted output; ``git-basic`` writes for ``commit``
and ``branch create/switch``, reads otherwise, and would be egress with untrusted output
for ``push``/``pull``/``fetch`` (which it refuses today); ``reminder`` writes (its
tools do; ``run_skill`` refuses it, having no program). The other bundled skills declare
their effects per call in their frontmatter (``effects:``, :mod:`nexflow.skills.declared`),
which is believed for bundled skills only.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from pathlib import PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from nexflow.tools.base import Effect, Tool, ToolSpec

if TYPE_CHECKING:  # nexflow.skills imports this module: no import cycle at run time
    from nexflow.skills.declared import DeclaredEffects


@dataclass(frozen=True, slots=True)
class Effects:
    """What one tool call does beyond reading, and whether its output is untrusted.

    ``label`` names the call in confirmation cards and taint marks (default: the tool's
    name; ``run_skill`` says which skill).
    """

    writes: bool = False
    egress: bool = False
    untrusted_output: bool = False
    label: str = ""

    @property
    def side_effects(self) -> bool:
        """True when the call writes or sends data out."""
        return self.writes or self.egress

    @property
    def kinds(self) -> tuple[Effect, ...]:
        out: list[Effect] = []
        if self.writes:
            out.append("write")
        if self.egress:
            out.append("egress")
        return tuple(out)

    def __or__(self, other: Effects) -> Effects:
        return Effects(
            self.writes or other.writes,
            self.egress or other.egress,
            self.untrusted_output or other.untrusted_output,
            self.label or other.label,
        )

    @classmethod
    def of_spec(cls, spec: ToolSpec) -> Effects:
        return cls(
            writes="write" in spec.effects,
            egress="egress" in spec.effects,
            untrusted_output=spec.untrusted_output,
        )


READ = Effects()
WRITE = Effects(writes=True)
EGRESS_UNTRUSTED = Effects(egress=True, untrusted_output=True)
EVERYTHING = Effects(writes=True, egress=True, untrusted_output=True)


@runtime_checkable
class DynamicEffects(Protocol):
    """A tool whose effects depend on its arguments (``run_skill``)."""

    def effects_for(self, args: Mapping[str, Any]) -> Effects: ...


def effects_of(tool: Tool, args: Mapping[str, Any]) -> Effects:
    """The effects of calling ``tool`` with ``args``: the hook's answer, else the spec's."""
    spec = tool.spec
    declared = Effects.of_spec(spec)
    if isinstance(tool, DynamicEffects):
        try:
            found = tool.effects_for(args)
        except Exception:  # a broken hook must not make a call look harmless
            found = declared
    else:
        found = declared
    return found if found.label else replace(found, label=spec.name)


# -- skills ----------------------------------------------------------------------------

_BY_PERMISSION: Mapping[str, Effects] = {
    "network": EGRESS_UNTRUSTED,
    "shell": EVERYTHING,
    "filesystem": WRITE,
}

_GIT_WRITES = frozenset({"commit"})
_GIT_REMOTE = frozenset({"push", "pull", "fetch", "clone"})


def _file_read(payload: Mapping[str, Any]) -> Effects:
    return Effects(untrusted_output=not inside_workspace(payload.get("path")))


def _git_basic(payload: Mapping[str, Any]) -> Effects:
    action = str(payload.get("action", "")).lower()
    if action in _GIT_REMOTE:
        return Effects(writes=True, egress=True, untrusted_output=True)
    if action in _GIT_WRITES:
        return WRITE
    if action == "branch" and str(payload.get("op") or "list").lower() != "list":
        return WRITE
    if action in {"status", "log", "diff", "branch"}:
        return READ
    return WRITE  # an action this table does not know: assume it changes something


_BUNDLED: Mapping[str, Callable[[Mapping[str, Any]], Effects]] = {
    "file-read": _file_read,
    "file-write": lambda _: WRITE,
    "http-request": lambda _: EGRESS_UNTRUSTED,
    "shell-run": lambda _: EVERYTHING,
    "git-basic": _git_basic,
    "reminder": lambda _: WRITE,
}


def skill_effects(
    name: str,
    permissions: Collection[str],
    payload: Mapping[str, Any],
    *,
    bundled: bool,
    declared: DeclaredEffects | None = None,
) -> Effects:
    """The effects of running skill ``name`` with ``payload``.

    ``bundled`` is True only for a skill loaded from Nexflow's own ``skills/`` folder:
    only those get the precise table, or their declared ``effects`` block
    (:mod:`nexflow.skills.declared`); any other skill is judged by its permissions.
    """
    label = f"run_skill:{name}"
    refine = _BUNDLED.get(name) if bundled else None
    if refine is not None:
        found = refine(payload)
    elif bundled and declared is not None:
        call = declared.for_input(payload)
        found = Effects(call.writes, call.egress, call.untrusted_output)
    else:
        found = READ
        for perm in permissions:
            found = found | _BY_PERMISSION.get(str(perm), READ)
    return replace(found, label=label)


def mcp_effects(label: str, *, read_only: bool | None, open_world: bool | None) -> Effects:
    """The effects of an MCP server's tool from its annotations (docs/mcp.md).

    ``readOnlyHint`` true: it reads; anything else (false or missing) writes.
    ``openWorldHint`` false: its world is closed; anything else (true or missing) is egress
    with untrusted output. A missing hint is the worst case, as the MCP spec's defaults
    say. (``destructiveHint`` does not change the effects: a destructive tool asks the
    user itself, see :mod:`nexflow.mcp_client.tools`.)
    """
    closed = open_world is False
    return Effects(
        writes=read_only is not True, egress=not closed, untrusted_output=not closed, label=label
    )


def inside_workspace(path: object) -> bool:
    """True for a relative path with no ``..`` (nor a drive or root): it stays inside."""
    if not isinstance(path, str) or not path.strip() or "\x00" in path:
        return False
    if PureWindowsPath(path).drive or path.startswith(("/", "\\", "~")):
        return False
    parts = PurePosixPath(path.replace("\\", "/")).parts
    return ".." not in parts
