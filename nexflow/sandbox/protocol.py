"""JSON exchanged with the guest (shapes produced by ``guest/prelude.js``).

Input is encoded strictly (no NaN, no non-JSON types); output is validated
here, once, and turned into frozen models. Anything unexpected is
``OutputInvalid``; a JS exception is ``GuestError``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import cast

from nexflow.sandbox.errors import GuestError, OutputInvalid
from nexflow.sandbox.models import (
    Effect,
    EmitEffect,
    EvalResult,
    HandlerOutcome,
    JSONObject,
    JSONValue,
    ViewEffect,
)


def encode_handler(
    source: str, state: Mapping[str, JSONValue], args: Mapping[str, JSONValue]
) -> bytes:
    return _dumps({"source": source, "state": dict(state), "args": dict(args)})


def encode_batch(expressions: Sequence[str], state: Mapping[str, JSONValue]) -> bytes:
    return _dumps({"exprs": list(expressions), "state": dict(state)})


def decode_handler(output: bytes, fuel_used: int) -> HandlerOutcome:
    body = _loads(output)
    state = body.get("state")
    effects = body.get("effects")
    if not isinstance(state, dict) or not isinstance(effects, list):
        raise OutputInvalid("handler result lacks a state object or an effects list")
    return HandlerOutcome(
        state=state,
        effects=tuple(_effect(e) for e in effects),
        logs=_logs(body),
        result=body.get("result"),
        fuel_used=fuel_used,
    )


def decode_batch(output: bytes, count: int) -> list[EvalResult]:
    body = _loads(output)
    results = body.get("results")
    if not isinstance(results, list) or len(results) != count:
        raise OutputInvalid(f"batch result does not hold {count} results")
    decoded: list[EvalResult] = []
    for item in results:
        if not isinstance(item, dict):
            raise OutputInvalid("batch result entry is not an object")
        if item.get("ok") is True:
            decoded.append(EvalResult(ok=True, value=item.get("value")))
        else:
            decoded.append(EvalResult(ok=False, error=str(_guest_error(item.get("error")))))
    return decoded


def _dumps(value: JSONObject) -> bytes:
    return json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode()


def _loads(output: bytes) -> JSONObject:
    try:
        body = json.loads(output)
    except ValueError as e:
        raise OutputInvalid("the guest returned malformed JSON") from e
    if not isinstance(body, dict):
        raise OutputInvalid("the guest returned something other than an object")
    if body.get("ok") is not True:
        error = _guest_error(body.get("error"))
        logs = body.get("logs")
        if isinstance(logs, list):
            error.logs = tuple(str(line) for line in logs)
        raise error
    return cast(JSONObject, body)


def _guest_error(raw: JSONValue) -> GuestError:
    if not isinstance(raw, dict):
        return GuestError("Error", "the script failed without an error description")
    line = raw.get("line")
    return GuestError(
        name=str(raw.get("name") or "Error"),
        message=str(raw.get("message") or ""),
        line=line if isinstance(line, int) and not isinstance(line, bool) else None,
    )


def _effect(raw: JSONValue) -> Effect:
    if isinstance(raw, dict):
        kind = raw.get("kind")
        event, method, component = raw.get("event"), raw.get("method"), raw.get("component")
        args = raw.get("args")
        if kind == "emit" and isinstance(event, str):
            return EmitEffect(event=event, payload=raw.get("payload"))
        if (
            kind == "view"
            and isinstance(method, str)
            and isinstance(args, list)
            and (component is None or isinstance(component, str))
        ):
            return ViewEffect(method=method, args=tuple(args), component=component)
    raise OutputInvalid(f"unexpected effect from the guest: {str(raw)[:200]}")


def _logs(body: JSONObject) -> tuple[str, ...]:
    logs = body.get("logs", [])
    if not isinstance(logs, list) or not all(isinstance(line, str) for line in logs):
        raise OutputInvalid("guest logs are not a list of strings")
    return tuple(cast(list[str], logs))
