"""Contracts shared by every tool provider.

A provider (built-in tools, the skill runner, panel tools) implements :class:`Tool`.
The orchestrator never knows which provider a tool comes from: it reads
:attr:`Tool.spec` to describe the tool to the model and awaits :meth:`Tool.run`.

Effects (SPEC section 6, "untrusted content never acts alone"): every spec declares what
the tool does beyond reading (``write``: changes state the user keeps; ``egress``: sends
data out of the box) and whether its output is untrusted (web pages, HTTP responses, mail
bodies, files from outside the workspace). An empty ``effects`` means read-only.

Exceptions: :class:`ToolError` (a tool failed in a way the model should hear about),
:class:`UnknownTool` (no such tool for this caller), :class:`ApprovalRequired` (raised by
``ToolContext.confirm`` inside a chat turn: the turn parks until the user answers).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Effect = Literal["write", "egress"]
"""What a tool does beyond reading: ``write`` (changes kept state), ``egress`` (sends out)."""


class ToolError(Exception):
    """A tool failed; ``message`` is safe to show to the model and the user."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class UnknownTool(ToolError):
    """The model named a tool that is not registered (or not offered to this caller)."""


class ApprovalRequired(Exception):
    """Raised by a chat turn's ``ToolContext.confirm``: the user must approve first.

    The turn runner catches it, stores the turn with the pending call and releases its
    worker; the user's answer resumes the turn, and the same call with the same
    arguments then gets its answer from ``confirm`` without asking again.
    """

    def __init__(self, title: str, detail: str) -> None:
        super().__init__(title)
        self.title = title
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """What the model sees of a tool: a name, a description and a JSON Schema for arguments."""

    name: str
    description: str
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    dangerous: bool = False
    effects: frozenset[Effect] = frozenset()  # empty: read-only
    untrusted_output: bool = False  # its output may carry instructions from outside
    # Offered by name only until the model loads it (nexflow.tools.disclosure): its schema
    # costs prompt tokens in every request, and most turns never call it.
    deferred: bool = False

    def to_openai(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": dict(self.parameters),
            },
        }


ConfirmFn = Callable[[str, str], Awaitable[bool]]
"""``confirm(title, detail) -> approved``: asks the *user* (never the model) to approve."""


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Who is calling and where; passed to every tool run."""

    user_id: str
    session_id: str
    channel: str
    chat_id: str
    permissions: frozenset[str] = frozenset()
    confirm: ConfirmFn | None = None
    role: str = "user"
    # Where untrusted content entered this turn (tool names); empty: the turn is clean.
    # Tools that store things (memory, notes, files) record the taint with them.
    tainted: tuple[str, ...] = ()
    # A flow step's key (``<run>:<node>:<attempt>``); after a crash the step runs again
    # with the same key, so a tool with a side effect applies it once per key.
    idempotency_key: str | None = None
    # A chat turn's inbox id: the same after a crash replays the turn, so a tool that hands
    # work elsewhere (run_skill on a worker) can join what the first attempt started.
    turn_id: str | None = None


# The message a chat's Stop cancels its turn's task with. A tool that handed work to
# another process (run_skill on a worker) cancels that work too on this message only: a
# gateway shutting down cancels its turns without it, and their replay joins the work.
TURN_STOPPED = "nexflow: the user stopped the turn"


def stopped_by_user(exc: BaseException) -> bool:
    """Whether ``exc`` (a ``CancelledError``) is a chat's Stop, not a shutdown."""
    return bool(exc.args) and exc.args[0] == TURN_STOPPED


@dataclass(frozen=True, slots=True)
class ToolResult:
    """The outcome of a tool call. ``content`` goes back to the model as the tool message."""

    content: str
    is_error: bool = False
    data: Mapping[str, Any] | None = None
    untrusted: bool = False  # this output is untrusted even if the spec does not say so
    loads: tuple[str, ...] = ()  # deferred tools to show the model from now on (panel_open)
    files: tuple[Attachment, ...] = ()  # sent to the chat after the turn's reply (send_file)


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file a tool asks to send to the user's chat after the reply (a ``FileOut``)."""

    path: str  # absolute, inside the workspace (checked by the tool)
    caption: str = ""


@runtime_checkable
class Tool(Protocol):
    """A callable capability. Implementations must not block the event loop."""

    @property
    def spec(self) -> ToolSpec: ...

    async def run(self, args: Mapping[str, Any], ctx: ToolContext) -> ToolResult: ...
