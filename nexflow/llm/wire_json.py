"""JSON on the model-call path, where it is the largest CPU cost of a plain message.

Every model call encodes its request twice: the budget gate estimates its tokens from
the wire size (:func:`nexflow.llm.gate.prompt_tokens`) and the client sends it. A
request with a 40-message history and 13 tool schemas is ~17 KB: the standard library
encodes it in ~86 µs (``ensure_ascii=False``) to ~126 µs (``aiohttp``'s default), orjson
in ~6 µs (measured on this project's benchmark machine; ``docs/benchmarks.md``).

orjson refuses a few values the standard library writes (integers beyond 64 bits,
non-string keys it is not told to take); :func:`dumps` falls back to the standard
library for those, so nothing the model call accepted before is refused now.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON; what JSON has no type for is written as ``str``."""
    try:
        return orjson.dumps(value, default=str, option=_OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode(
            "utf-8", "replace"
        )


loads = orjson.loads

__all__ = ["dumps", "loads"]
