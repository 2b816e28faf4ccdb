"""Frontmatter shapes: each dialect parses into the same model; bad files say where."""

from __future__ import annotations

from pathlib import Path

import pytest

from nexflow.skills.loader import load_skill
from nexflow.skills.model import DEFAULT_MAX_OUTPUT_KB, DEFAULT_TIMEOUT_SEC


def write(tmp_path: Path, text: str, folder: str = "demo", raw: bool = False) -> Path:
    path = tmp_path / folder / "SKILL.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    if raw:
        path.write_bytes(text.encode())
    else:
        path.write_text(text)
    return path


PRD = """---
name: demo
description: Safely run shell commands on the local machine
emoji: 🐚
version: 1.0.0
author: your-name
homepage: https://github.com/youruser/nexflow-skills
location: ./run.sh
tags: [system, shell, cli]
category: system
permissions: [shell, filesystem]
env_required: false
metadata: {"timeoutSec": 5, "maxOutputKb": 64}
requirements:
  binaries: [bash]
  files: [./run.sh]
  env: []
---
# demo

## Input schema
```json
{"type": "object", "required": ["command"], "properties": {"command": {"type": "string"}}}
```

## Output schema
```json
{"type": "object", "properties": {"ok": {"type": "boolean"}}}
```
"""


def test_prd_fields(tmp_path: Path) -> None:
    skill = load_skill(write(tmp_path, PRD))
    assert skill.load_error is None
    assert (skill.emoji, skill.version, skill.author) == ("🐚", "1.0.0", "your-name")
    assert skill.location == "./run.sh"
    assert skill.tags == ("system", "shell", "cli")
    assert skill.category == "system"
    assert skill.permissions == {"shell", "filesystem"}
    assert skill.env_required == ()
    assert (skill.timeout_sec, skill.max_output_kb) == (5.0, 64)
    assert skill.requirements.bins == ("bash",)
    assert skill.requirements.files == ("./run.sh",)
    assert skill.input_schema is not None
    assert skill.input_schema["required"] == ["command"]
    assert skill.output_schema == {"type": "object", "properties": {"ok": {"type": "boolean"}}}


def test_defaults_for_limits(tmp_path: Path) -> None:
    skill = load_skill(write(tmp_path, "---\nname: demo\ndescription: d\n---\nbody"))
    assert (skill.timeout_sec, skill.max_output_kb) == (DEFAULT_TIMEOUT_SEC, DEFAULT_MAX_OUTPUT_KB)
    assert skill.body == "body"
    assert not skill.runnable


@pytest.mark.parametrize(
    "metadata",
    [
        'metadata: {"openclaw":{"emoji":"🦞","requires":{"bins":["gh"],"env":["GH_TOKEN"]}}}',
        'metadata: {"clawdbot":{"emoji":"🦞","requires":{"bins":["gh"],"env":["GH_TOKEN"]}}}',
        'metadata: {"clawdis":{"emoji":"🦞","requires":{"bins":["gh"],"env":["GH_TOKEN"]}}}',
        'metadata: {"nanobot":{"emoji":"🦞","requires":{"bins":["gh"],"env":["GH_TOKEN"]}}}',
        'metadata: \'{"openclaw": {"emoji": "🦞", "requires": '
        '{"bins": ["gh"], "env": ["GH_TOKEN"]}}}\'',
        "metadata:\n  openclaw:\n    emoji: 🦞\n    requires:\n      bins: [gh]\n"
        "      env:\n        - GH_TOKEN",
        'metadata:\n  {\n    "openclaw":\n      {\n        "emoji": "🦞",\n'
        '        "requires": { "bins": ["gh"], "env": ["GH_TOKEN"], },\n      },\n  }',
    ],
    ids=["openclaw", "clawdbot", "clawdis", "nanobot", "json-string", "block-yaml", "json5-flow"],
)
def test_metadata_dialects(tmp_path: Path, metadata: str) -> None:
    skill = load_skill(write(tmp_path, f"---\nname: demo\ndescription: d\n{metadata}\n---\n"))
    assert skill.load_error is None, skill.load_error
    assert skill.emoji == "🦞"
    assert skill.requirements.bins == ("gh",)
    assert skill.env_required == ("GH_TOKEN",)


def test_crlf_and_bom(tmp_path: Path) -> None:
    text = "\ufeff---\r\nname: demo\r\ndescription: d\r\n---\r\n# body\r\n"
    skill = load_skill(write(tmp_path, text, raw=True))
    assert skill.load_error is None
    assert skill.body == "# body"


def test_agent_skills_fields(tmp_path: Path) -> None:
    text = (
        "---\nname: demo\ndescription: d\nlicense: MIT\ncompatibility: Needs git\n"
        "allowed-tools: Bash(git:*) Bash(jq:*) Read\nmetadata:\n  author: me\n  version: '2'\n"
        "unknown-key: kept\n---\n"
    )
    skill = load_skill(write(tmp_path, text))
    assert (skill.license, skill.compatibility, skill.author, skill.version) == (
        "MIT",
        "Needs git",
        "me",
        "2",
    )
    assert skill.allowed_tools == ("Bash(git:*)", "Bash(jq:*)", "Read")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("# no frontmatter\n", r"SKILL.md:1: no YAML frontmatter"),
        (
            "name: demo\ndescription: d\n---\nbody",
            r"SKILL.md:1: frontmatter is missing its opening",
        ),
        ("---\nname: demo\ndescription: d\n", r"SKILL.md:1: frontmatter opened on line 1 is never"),
        ("---\nname: demo\n<<<<<<< HEAD\n---\n", r"SKILL.md:3: unresolved git merge-conflict"),
        ("---\n- a\n- b\n---\n", r"SKILL.md:2: frontmatter must be a mapping"),
        ("---\nname: demo\n---\n", r"SKILL.md: frontmatter has no 'description'"),
        ("---\ndescription: d\n---\n", r"SKILL.md: frontmatter has no 'name'"),
        ("---\nname: demo\ndescription: ''\n---\n", r"SKILL.md: frontmatter has no 'description'"),
        ('---\nname: "a\\tb"\ndescription: d\n---\n', r"contains control characters"),
        ("---\nname: demo\ndescription: d\npermissions: [root]\n---\n", r"unknown permission"),
        ('---\nname: demo\ndescription: d\nmetadata: {"timeoutSec": -1}\n---\n', r"timeoutSec"),
        ("---\nname: demo\ndescription: [a, b]\n---\n", r"invalid frontmatter: description:"),
        (
            '---\nname: demo\ndescription: d: e\nmetadata: {"a": [}\n---\n',
            r"SKILL.md:4: 'metadata'",
        ),
    ],
)
def test_bad_files_are_unavailable_with_a_precise_reason(
    tmp_path: Path, text: str, reason: str
) -> None:
    path = write(tmp_path, text)
    skill = load_skill(path)
    assert not skill.available
    assert skill.reason is not None
    assert skill.reason.startswith(str(path))
    assert __import__("re").search(reason, skill.reason), skill.reason


def test_unreadable_file_is_unavailable(tmp_path: Path) -> None:
    path = write(tmp_path, "x")
    path.write_bytes(b"---\nname: \xff\xfe\n---\n")
    skill = load_skill(path)
    assert not skill.available
    assert "cannot read file" in (skill.reason or "")
