"""The model-call path's JSON (nexflow.llm.wire_json): the same values as the standard
library, compact UTF-8, and nothing refused that the standard library writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from nexflow.llm import wire_json


def test_it_decodes_to_what_the_standard_library_reads() -> None:
    value = {
        "messages": [{"role": "user", "content": 'Привет, "мир" \n\t\u2028 ✓'}],
        "tools": [{"type": "function", "function": {"name": "t", "parameters": {}}}],
        "max_tokens": 512,
        "temperature": 0.2,
        "stream": True,
        "none": None,
    }
    raw = wire_json.dumps(value)
    assert json.loads(raw) == value
    # compact UTF-8, no \u escapes: what the standard library writes with these options
    compact = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    assert raw == compact


def test_what_json_has_no_type_for_is_written_as_str() -> None:
    when = datetime(2026, 12, 6, tzinfo=UTC)
    assert json.loads(wire_json.dumps({"p": Path("/tmp/x"), "s": {1}})) == {
        "p": "/tmp/x",
        "s": "{1}",
    }
    assert json.loads(wire_json.dumps([when])) == [when.isoformat()]


def test_what_orjson_refuses_falls_back_to_the_standard_library() -> None:
    huge = 2**70
    assert json.loads(wire_json.dumps({"n": huge})) == {"n": huge}
    assert json.loads(wire_json.dumps({1: "a", None: "b"})) == {"1": "a", "null": "b"}


def test_loads_reads_a_stream_chunk() -> None:
    chunk = '{"choices": [{"delta": {"content": "да"}}]}'
    assert wire_json.loads(chunk) == json.loads(chunk)
