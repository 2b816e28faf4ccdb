"""What a sync's model answer may be, and how it is read.

The model proposes its changes by calling one tool, ``propose_changes``, whose JSON
schema is :data:`PROPOSE_TOOL`; the arguments are validated with :class:`SyncAnswer`.
Small local models often ignore tools and write the JSON in their text instead (fenced
or not), so that is accepted too. Anything else — prose, nothing, arguments of the
wrong shape, too many changes — is :class:`SyncUnusable`: a 422 at the HTTP edge that
says what was wrong, never a 5xx, since the gateway itself did not fail.

:func:`read_reply` is pure (no model, no I/O) so every shape a model may send is tested
without one; :mod:`nexflow.workspace.sync` owns the model call and the correction round.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, model_validator

from nexflow.llm.client import LLMResponse, ToolCall
from nexflow.workspace.api import SyncUnusable

TOOL_NAME = "propose_changes"
_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")


class SyncChange(BaseModel):
    """One affected target in the model's answer."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    target: str = Field(min_length=3, max_length=300)
    summary: str = Field(min_length=1, max_length=200)
    state: dict[str, JsonValue] | None = None
    append: dict[str, list[JsonValue]] | None = None
    nxml: str | None = None
    text: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> SyncChange:
        if self.target.startswith("file:"):
            if self.text is None:
                raise ValueError("a file target needs the new 'text'")
        elif self.target.startswith("panel:"):
            if not self.state and not self.append and self.nxml is None:
                raise ValueError("a panel target needs 'state', 'append' or 'nxml'")
        else:
            raise ValueError("target must start with 'panel:' or 'file:'")
        return self

    def content(self) -> str:
        if self.target.startswith("file:"):
            return self.text or ""
        body: dict[str, Any] = {}
        if self.state:
            body["state"] = self.state
        if self.append:
            body["append"] = self.append
        if self.nxml is not None:
            body["nxml"] = self.nxml
        return json.dumps(body, ensure_ascii=False)


class SyncAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    changes: list[SyncChange] = Field(default_factory=list)


# Written by hand rather than generated from SyncAnswer: a flat schema without $defs
# is what small models follow best. SyncAnswer stays the one that decides.
PROPOSE_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": TOOL_NAME,
        "description": (
            "Propose the changes other panels and files need so they agree with the "
            "source panel's change. Call it once, with every change; an empty list "
            "when nothing needs to change."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "changes": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "target": {
                                "type": "string",
                                "description": "'panel:<panel id>' or 'file:<relative path>'",
                            },
                            "summary": {
                                "type": "string",
                                "description": "One line a person reads",
                            },
                            "state": {
                                "type": "object",
                                "description": "Panel: declared state keys → new whole values",
                            },
                            "append": {
                                "type": "object",
                                "description": "Panel: list state keys → items to add",
                            },
                            "text": {
                                "type": "string",
                                "description": "File: the new full text",
                            },
                            "nxml": {
                                "type": "string",
                                "description": (
                                    "Panel: its whole new NXML, only when its tools or "
                                    "view must change"
                                ),
                            },
                        },
                        "required": ["target", "summary"],
                    },
                }
            },
            "required": ["changes"],
        },
    },
}


def read_reply(response: LLMResponse, max_changes: int) -> SyncAnswer:
    """The changes the model proposed: its ``propose_changes`` call(s), else JSON in its
    text. :class:`SyncUnusable` says what is wrong otherwise."""
    calls = [c for c in response.tool_calls if _is_propose(c)]
    if calls:
        changes: list[SyncChange] = []
        for call in calls:
            changes.extend(_from_arguments(call.arguments).changes)
        return _limited(SyncAnswer(changes=changes), max_changes)
    if response.tool_calls:
        names = ", ".join(sorted({c.name for c in response.tool_calls}))
        raise SyncUnusable(
            f"the model called {names} instead of {TOOL_NAME}; no patch was made", _HINT
        )
    return parse_answer(response.content, max_changes)


def parse_answer(text: str, max_changes: int) -> SyncAnswer:
    """The free-JSON fallback: ``{"changes": [...]}`` in the text, fenced or not."""
    raw = _FENCE.sub("", text.strip())
    if not raw:
        raise SyncUnusable(
            f"the model answered nothing: no {TOOL_NAME} call and no text; no patch was made",
            _HINT,
        )
    start, end = raw.find("{"), raw.rfind("}")
    try:
        value = json.loads(raw[start : end + 1] if 0 <= start < end else raw)
    except json.JSONDecodeError as exc:
        raise SyncUnusable(
            f"the model answered in prose (not valid JSON: {exc.msg}; no {TOOL_NAME} call): "
            f"{_quote(raw)}; no patch was made",
            _HINT,
        ) from exc
    return _limited(_validated(_unwrapped(value)), max_changes)


def _from_arguments(arguments: str) -> SyncAnswer:
    try:
        value = json.loads(arguments or "{}")
    except json.JSONDecodeError as exc:
        raise SyncUnusable(
            f"the {TOOL_NAME} arguments are not valid JSON ({exc.msg}); no patch was made",
            _HINT,
        ) from exc
    return _validated(_unwrapped(value))


def _unwrapped(value: object) -> object:
    """Lenient about the wrapper small models get wrong: a bare list of changes, one change
    on its own, or the tool call written out as text (``{"name": "propose_changes",
    "arguments": {...}}``) mean what they obviously mean."""
    if isinstance(value, list):
        return {"changes": value}
    if not isinstance(value, dict) or "changes" in value:
        return value
    if "target" in value:
        return {"changes": [value]}
    inner = value.get("arguments", value.get("parameters"))
    if isinstance(inner, str):
        try:
            inner = json.loads(inner)
        except json.JSONDecodeError:
            return value
    return _unwrapped(inner) if isinstance(inner, dict | list) else value


def _validated(value: object) -> SyncAnswer:
    if not isinstance(value, dict):
        raise SyncUnusable(
            "the model's sync answer has the wrong shape (answer: expected an object with "
            "'changes'); no patch was made",
            _HINT,
        )
    try:
        return SyncAnswer.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "answer"
        raise SyncUnusable(
            f"the model's sync answer has the wrong shape ({where}: {first.get('msg')}); "
            "no patch was made",
            _HINT,
        ) from exc


def _limited(answer: SyncAnswer, max_changes: int) -> SyncAnswer:
    if len(answer.changes) > max_changes:
        raise SyncUnusable(
            f"the model proposed {len(answer.changes)} changes, more than the "
            f"{max_changes} one sync may make; no patch was made",
            "raise workspaces.sync_max_changes, or sync a smaller change",
        )
    return answer


def _is_propose(call: ToolCall) -> bool:
    # Some local models prefix or namespace tool names ("functions.propose_changes").
    return call.name == TOOL_NAME or call.name.endswith("." + TOOL_NAME)


def _quote(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return json.dumps(flat if len(flat) <= limit else flat[: limit - 1] + "…", ensure_ascii=False)


_HINT = "try /sync again, or route workspaces.sync_route to a model that can call tools"
