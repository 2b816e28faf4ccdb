"""The command line: exit codes and messages a person (or systemd) can act on."""

import os
import subprocess
import sys
from pathlib import Path

NEXFLOW = [sys.executable, "-m", "nexflow"]


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("NEXFLOW_")}
    full_env.update(
        {"NEXFLOW_HOME": str(tmp_path / "home"), "NEXFLOW_LLM__OLLAMA__PROBE": "false", **env}
    )
    return subprocess.run(
        [*NEXFLOW, *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )


def test_version(tmp_path: Path) -> None:
    out = run(["version"], tmp_path)
    assert out.returncode == 0 and out.stdout.startswith("nexflow ")


def test_invalid_config_exits_78_with_the_key_and_no_traceback(tmp_path: Path) -> None:
    config = tmp_path / "bad.yml"
    config.write_text("web:\n  port: not-a-port\n  hots: 0.0.0.0\n")
    out = run(["serve", "--config", str(config)], tmp_path)
    assert out.returncode == 78
    assert (
        "web.port" in out.stderr
        and "web.hots" in out.stderr
        and "did you mean 'host'" in out.stderr
    )
    assert "Traceback" not in out.stderr


def test_public_bind_without_token_is_refused(tmp_path: Path) -> None:
    out = run(["serve", "--host", "0.0.0.0", "--port", "0"], tmp_path)
    assert out.returncode == 78
    assert "refusing to listen on 0.0.0.0" in out.stderr and "NEXFLOW_GATEWAY_TOKEN" in out.stderr


def test_doctor_reports_missing_model_with_a_fix(tmp_path: Path) -> None:
    out = run(["doctor"], tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "[warn] model" in out.stdout and "NEXFLOW_LLM_MODEL" in out.stdout


def test_doctor_fails_on_unreachable_model(tmp_path: Path) -> None:
    out = run(
        ["doctor"],
        tmp_path,
        NEXFLOW_LLM_MODEL="openai/x",
        NEXFLOW_LLM_API_BASE="http://127.0.0.1:9/v1",
        NEXFLOW_LLM_API_KEY="secret-key-value",
    )
    assert out.returncode == 1
    assert "[FAIL] model default" in out.stdout
    assert "secret-key-value" not in out.stdout


def test_doctor_on_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text("bus: {concurrency: 0}\n")
    out = run(["doctor", "--config", str(config)], tmp_path)
    assert out.returncode == 1 and "bus.concurrency" in out.stdout


def test_skills_list_validate_run(tmp_path: Path) -> None:
    listed = run(["skills", "list"], tmp_path)
    assert listed.returncode == 0 and "shell-run" in listed.stdout and "available" in listed.stdout
    repo = Path(__file__).resolve().parents[1]
    assert run(["skills", "validate", str(repo / "skills" / "file-read")], tmp_path).returncode == 0
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "SKILL.md").write_text("---\nname: Bad Name\n---\nbody\n")
    bad = run(["skills", "validate", str(broken)], tmp_path)
    assert bad.returncode == 1 and "--" in bad.stdout
    refused = run(["skills", "run", "shell-run", "--input", '{"command": "echo x"}'], tmp_path)
    assert refused.returncode == 1 and "--yes" in refused.stderr
    ran = run(["skills", "run", "shell-run", "--input", '{"command": "echo x"}', "--yes"], tmp_path)
    assert ran.returncode == 0 and ran.stdout == "x\n"
