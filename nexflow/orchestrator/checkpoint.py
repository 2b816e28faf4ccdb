"""What a parked turn keeps so it can resume exactly where it stopped.

A turn parks when a tool call needs the user's approval
(:class:`~nexflow.tools.base.ApprovalRequired`). The :class:`Checkpoint` holds the model's
messages so far, the calls of the model's last answer and which of them is waiting, the
step count, the taint of the turn and everything the turn has produced (history
messages, audit, tool lines). It is stored as JSON with the turn (table ``turns``) and
read back by the turn runner when the answer arrives, possibly after a restart.

``kind`` is ``agent`` (a model turn) or ``command`` (a slash command such as ``/run``
that asked; it is simply run again with the answer).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from nexflow.llm.client import ToolCall
from nexflow.storage.base import AuditRecord, NewMessage
from nexflow.tools.base import Attachment


@dataclass(slots=True)
class Checkpoint:
    kind: Literal["agent", "command"]
    call_key: str  # the call waiting for the answer (nexflow.tools.approval.call_key)
    title: str
    detail: str
    messages: list[dict[str, Any]] = field(default_factory=list)  # the model's wire messages
    calls: list[ToolCall] = field(default_factory=list)  # the model's last tool calls
    index: int = 0  # calls[index] is the one waiting
    step: int = 0  # model calls made so far
    hidden_tools: list[str] = field(default_factory=list)
    tainted: list[str] = field(default_factory=list)
    history: list[NewMessage] = field(default_factory=list)  # for the session's history
    audit: list[AuditRecord] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    llm_seconds: float = 0.0
    loaded_tools: list[str] = field(default_factory=list)  # nexflow.tools.disclosure
    files: list[Attachment] = field(default_factory=list)  # to send after the reply

    def dumps(self) -> str:
        raw = dataclasses.asdict(self)
        return json.dumps(raw, ensure_ascii=False, separators=(",", ":"), default=str)

    @classmethod
    def loads(cls, text: str) -> Checkpoint:
        raw = json.loads(text)
        raw["calls"] = [ToolCall(**c) for c in raw.get("calls", ())]
        raw["history"] = [NewMessage(**m) for m in raw.get("history", ())]
        raw["audit"] = [AuditRecord(**a) for a in raw.get("audit", ())]
        raw["files"] = [Attachment(**f) for f in raw.get("files", ())]
        return cls(**raw)
