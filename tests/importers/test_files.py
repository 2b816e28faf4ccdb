import json
from pathlib import Path

import pytest

from nexflow.importers.errors import SourceFileInvalid
from nexflow.importers.files import json5_to_json, read_env, read_json, read_json5


def test_json5_subset_openclaw_writes() -> None:
    text = """// top comment
    {
      agents: { defaults: { workspace: "~/.openclaw/workspace", }, },  // trailing commas
      'quoted': 'it\\'s "fine"',
      url: "https://example.com/a//b", /* block
      comment */ list: [1, 2, 3,],
      "dashed-key": true,
    }"""
    assert json.loads(json5_to_json(text)) == {
        "agents": {"defaults": {"workspace": "~/.openclaw/workspace"}},
        "quoted": 'it\'s "fine"',
        "url": "https://example.com/a//b",
        "list": [1, 2, 3],
        "dashed-key": True,
    }


def test_invalid_json5_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "openclaw.json"
    path.write_text('{\n  channels: {\n    telegram: { botToken: "x" \n  }\n', encoding="utf-8")
    with pytest.raises(SourceFileInvalid) as info:
        read_json5(path)
    assert info.value.path == str(path)
    assert "invalid JSON5 at line" in info.value.reason


def test_unclosed_string_is_invalid_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "openclaw.json"
    path.write_text('{ a: "never closed }', encoding="utf-8")
    with pytest.raises(SourceFileInvalid, match="unclosed string"):
        read_json5(path)


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "jobs.json"
    path.write_text('{"jobs": [\n  {"id": 1,\n', encoding="utf-8")
    with pytest.raises(SourceFileInvalid, match=r"invalid JSON at line 3, column 1"):
        read_json(path)


def test_not_utf8_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(SourceFileInvalid, match="not UTF-8"):
        read_json(path)


def test_env_file(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(
        "# secrets\nexport A=1\nB=\"two words\"\nC='x'\nD=plain # comment\n\n", encoding="utf-8"
    )
    assert read_env(path) == {"A": "1", "B": "two words", "C": "x", "D": "plain"}
    path.write_text("A=1\nnot a line\n", encoding="utf-8")
    with pytest.raises(SourceFileInvalid, match="line 2: expected KEY=VALUE"):
        read_env(path)
