"""The runner with real subprocesses: I/O contract, schemas, env scrubbing, limits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from skills_support import BUNDLED, MakeSkill, runner_for

from nexflow.skills import (
    IsolationLevel,
    SkillInputInvalid,
    SkillLocationError,
    SkillPermissionDenied,
    SkillUnavailable,
    load_skill,
)
from nexflow.skills.eligibility import HostContext, evaluate
from nexflow.skills.isolation import isolation_report

ECHO = """
#!/usr/bin/env bash
input=$(cat)
printf '{"stdin": %s, "arg": "%s", "home": "%s", "pwd": "%s"}' \
  "$input" "$SKILL_ARG_WHO" "$HOME" "$PWD"
"""


def ready(path: Path):
    skill = evaluate(load_skill(path), HostContext())
    assert skill.available, skill.reason
    return skill


async def test_input_on_stdin_and_env(
    make_skill: MakeSkill, workspace: Path, level: IsolationLevel
) -> None:
    skill = ready(make_skill("echo", script=ECHO))
    result = await runner_for(level).run(skill, {"who": "ana"}, workspace=workspace)
    assert result.ok, (result.error, result.stderr_tail)
    assert result.data == {
        "stdin": {"who": "ana"},
        "arg": "ana",
        "home": str(workspace),
        "pwd": str(workspace),
    }
    assert result.exit_code == 0
    assert result.isolation is level
    assert result.duration_ms > 0


async def test_python_and_node_skills(make_skill: MakeSkill, workspace: Path) -> None:
    runner = runner_for(IsolationLevel.NONE)
    py = ready(
        make_skill(
            "py",
            script="import json, sys\nprint(json.dumps({'n': json.load(sys.stdin)['n'] + 1}))\n",
            script_name="main.py",
        )
    )
    assert (await runner.run(py, {"n": 1}, workspace=workspace)).data == {"n": 2}
    js = make_skill(
        "js",
        script="let d='';process.stdin.on('data',c=>d+=c).on('end',()=>"
        "console.log(JSON.stringify({n: JSON.parse(d).n * 2})));\n",
        script_name="skill.js",
    )
    skill = evaluate(load_skill(js), HostContext())
    assert skill.available, skill.reason  # node is part of the supported machine
    assert (await runner.run(skill, {"n": 21}, workspace=workspace)).data == {"n": 42}


async def test_shebang_executable(make_skill: MakeSkill, workspace: Path) -> None:
    path = make_skill("bin", script="#!/bin/sh\necho plain\n", script_name="tool")
    (path.parent / "tool").chmod(0o755)
    result = await runner_for(IsolationLevel.NONE).run(ready(path), {}, workspace=workspace)
    assert result.output == "plain\n"


def test_non_executable_without_extension_is_unavailable(make_skill: MakeSkill) -> None:
    skill = evaluate(
        load_skill(make_skill("nox", script="echo\n", script_name="tool")), HostContext()
    )
    assert not skill.available
    assert "not an executable with a shebang" in (skill.reason or "")


async def test_schemas_are_enforced(make_skill: MakeSkill, workspace: Path) -> None:
    schema = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}
    skill = ready(
        make_skill(
            "typed",
            script='echo \'{"n": "not a number"}\'\n',
            extra={"inputSchema": schema, "outputSchema": schema},
        )
    )
    runner = runner_for(IsolationLevel.NONE)
    with pytest.raises(SkillInputInvalid, match=r"\$: missing required property 'n'"):
        await runner.run(skill, {}, workspace=workspace)
    result = await runner.run(skill, {"n": 1}, workspace=workspace)
    assert not result.ok
    assert result.error == (
        "output does not match the output schema: $.n: expected integer, got str"
    )


async def test_bundled_file_read(workspace: Path, level: IsolationLevel) -> None:
    (workspace / "notes.txt").write_text("one\ntwo\nthree\n")
    skill = ready(BUNDLED / "file-read" / "SKILL.md")
    runner = runner_for(level)
    result = await runner.run(skill, {"path": "notes.txt", "start_line": 2}, workspace=workspace)
    assert result.ok, result.error
    assert result.data["content"] == "two\nthree\n"
    escape = await runner.run(skill, {"path": "../../etc/passwd"}, workspace=workspace)
    assert not escape.ok
    assert "outside the workspace" in escape.stderr_tail


async def test_environment_is_scrubbed_and_secrets_need_a_grant(
    make_skill: MakeSkill, workspace: Path, monkeypatch: pytest.MonkeyPatch, level: IsolationLevel
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-provider-leak")
    monkeypatch.setenv("NEXFLOW_TOKEN", "gateway-token-leak")
    monkeypatch.setenv("DEMO_TOKEN", "host-value")  # eligibility: the host can grant it
    skill = ready(
        make_skill("env-dump", script="env\n", extra={"requirements": {"env": ["DEMO_TOKEN"]}})
    )
    runner = runner_for(level)
    with pytest.raises(SkillPermissionDenied, match="needs DEMO_TOKEN, which was not granted"):
        await runner.run(skill, {}, workspace=workspace)
    result = await runner.run(
        skill, {}, workspace=workspace, secrets={"DEMO_TOKEN": "granted", "OTHER": "no"}
    )
    assert result.ok
    names = {line.split("=", 1)[0] for line in result.output.splitlines() if "=" in line}
    assert "DEMO_TOKEN=granted" in result.output
    assert "sk-provider-leak" not in result.output
    assert "gateway-token-leak" not in result.output
    assert "OTHER" not in names
    assert names <= {
        "PATH",
        "LANG",
        "HOME",
        "TMPDIR",
        "SKILL_NAME",
        "SKILL_DIR",
        "SKILL_INPUT",
        "NEXFLOW_WORKSPACE",
        "DEMO_TOKEN",
        "PWD",
        "SHLVL",
        "_",
    }


async def test_unavailable_skills_are_refused(make_skill: MakeSkill, workspace: Path) -> None:
    skill = evaluate(
        load_skill(
            make_skill(
                "no-bin", script="true\n", extra={"requirements": {"binaries": ["nope-xyz"]}}
            )
        ),
        HostContext(),
    )
    with pytest.raises(SkillUnavailable, match="missing binary on PATH: nope-xyz"):
        await runner_for(IsolationLevel.NONE).run(skill, {}, workspace=workspace)
    instructions = ready(make_skill("teach"))
    with pytest.raises(SkillLocationError, match="instructions-only"):
        await runner_for(IsolationLevel.NONE).run(instructions, {}, workspace=workspace)


def test_isolation_report_names_a_working_level() -> None:
    report = isolation_report()
    assert report.level in IsolationLevel
    assert f"skill isolation: {report.level.value}" in report.text()
    if os.getuid() == 0:
        # As root (this CI), unshare(2) must work: at least the namespaces level is active.
        assert report.level is not IsolationLevel.NONE
        assert report.network_isolated and report.filesystem_confined


async def test_a_flow_steps_key_is_in_the_environment(
    make_skill: MakeSkill, workspace: Path
) -> None:
    """A step runs at least once, so a skill with a side effect gets the step's key
    (``NEXFLOW_IDEMPOTENCY_KEY``) to apply it once; outside a flow there is none."""
    script = """
    #!/usr/bin/env bash
    log="$NEXFLOW_WORKSPACE/sent.log"
    key="${NEXFLOW_IDEMPOTENCY_KEY:-}"
    if [ -n "$key" ] && grep -qxF "$key" "$log" 2>/dev/null; then
      printf '{"sent": false, "key": "%s"}' "$key"; exit 0
    fi
    [ -n "$key" ] && echo "$key" >> "$log"
    printf '{"sent": true, "key": "%s"}' "$key"
    """
    skill = ready(make_skill("send-once", script=script))
    runner = runner_for(IsolationLevel.NONE)
    first = await runner.run(skill, {}, workspace=workspace, idempotency_key="run1:send:1")
    again = await runner.run(skill, {}, workspace=workspace, idempotency_key="run1:send:1")
    plain = await runner.run(skill, {}, workspace=workspace)
    assert first.data == {"sent": True, "key": "run1:send:1"}
    assert again.data == {"sent": False, "key": "run1:send:1"}
    assert plain.data == {"sent": True, "key": ""}
