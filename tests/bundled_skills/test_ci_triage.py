"""The bundled ``ci-triage`` skill against a loopback fake of the GitHub REST API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bundled_support import call_skill, failure, refusal, run_skill, skill_gateway, tool_json
from fakes_devops import FakeGitHub

from nexflow.skills.result import RunResult

REPO = "octo-org/demo"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


def grants(fake: FakeGitHub) -> dict[str, str]:
    return {"GITHUB_TOKEN": fake.token, "GITHUB_API_URL": fake.url}


async def triage(fake: FakeGitHub, workspace: Path, **payload: Any) -> RunResult:
    return await run_skill("ci-triage", {"repo": REPO, **payload}, workspace, grants(fake))


def stamped(lines: list[str], start_minute: int = 51) -> str:
    return "\n".join(
        f"2026-12-01T11:{start_minute + i // 60:02d}:{i % 60:02d}.0000000Z {text}"
        for i, text in enumerate(lines)
    )


async def test_latest_failed_run_of_a_branch(github: FakeGitHub, workspace: Path) -> None:
    r = await triage(github, workspace, branch="main")
    assert r.ok, (r.error, r.stderr_tail)
    data = r.data
    assert data["run"]["id"] == 9001 and data["run"]["conclusion"] == "failure"
    assert (data["jobs_total"], data["jobs_failed"]) == (2, 1)
    job = data["failed_jobs"][0]
    assert job["job"] == "test (3.12)" and job["job_id"] == 71
    assert job["step"] == {"number": 4, "name": "Run pytest -q"}
    assert job["exit_code"] == 1
    assert job["first_error"] == {
        "line": 16,
        "text": "E       AssertionError: assert 'denied' == 'ok'",
    }
    excerpt = job["excerpt"].splitlines()
    assert excerpt[0] == "13 | ___________________________ test_login ___________"
    assert "16 | E       AssertionError: assert 'denied' == 'ok'" in excerpt
    assert [e["line"] for e in job["errors"]] == [16, 17, 19, 21]
    assert job["log_url"] == f"https://github.com/{REPO}/actions/runs/9001/job/71#step:4:10"
    assert "test (3.12)" in data["summary"] and "AssertionError" in data["summary"]
    query = github.seen("GET", f"/repos/{REPO}/actions/runs")[0].query
    assert query["status"] == ["failure"] and query["branch"] == ["main"]
    assert github.blob_auth == [None]  # the log came from storage without the token


async def test_run_by_id_and_other_error_shapes(github: FakeGitHub, workspace: Path) -> None:
    # A compiler error inside the failing step wins over an earlier harmless "0 errors"
    # line and over the runner's closing exit-code line.
    github.logs[71] = stamped(
        [
            "##[group]Run cargo build",
            "lint: 0 errors",
            "   Compiling demo v0.1.0",
            "error[E0308]: mismatched types",
            "  --> src/main.rs:4:18",
            "##[error]Process completed with exit code 101.",
        ]
    )
    r = await triage(github, workspace, run_id=9001, context_lines=0)
    assert r.ok, r.error
    job = r.data["failed_jobs"][0]
    assert job["first_error"] == {"line": 4, "text": "error[E0308]: mismatched types"}
    assert job["excerpt"].splitlines()[0] == "4 | error[E0308]: mismatched types"
    assert job["exit_code"] == 101
    assert github.requests[0].path == f"/repos/{REPO}/actions/runs/9001"


async def test_only_the_exit_code_line(github: FakeGitHub, workspace: Path) -> None:
    github.logs[71] = stamped(
        ["##[group]Run ./deploy.sh", "deploying", "##[error]Process completed with exit code 3."]
    )
    r = await triage(github, workspace, run_id=9001)
    job = r.data["failed_jobs"][0]
    assert job["first_error"]["line"] == 3 and job["exit_code"] == 3


async def test_long_log_keeps_true_line_numbers(github: FakeGitHub, workspace: Path) -> None:
    noise = [f"progress line {i} " + "x" * 200 for i in range(12_000)]  # ~2.5 MB
    github.logs[71] = "\n".join([*noise, "Traceback (most recent call last):", "ValueError: boom"])
    r = await triage(github, workspace, run_id=9001)
    assert r.ok, r.error
    job = r.data["failed_jobs"][0]
    assert job["log_truncated"] is True
    assert job["first_error"] == {"line": 12_001, "text": "Traceback (most recent call last):"}
    assert job["step"]["number"] == 4  # from the jobs API, whatever the log holds


async def test_no_failed_run(github: FakeGitHub, workspace: Path) -> None:
    r = await triage(github, workspace, branch="feat/cache")
    assert r.ok, r.error
    assert r.data == {
        "repo": REPO,
        "run": None,
        "failed_jobs": [],
        "summary": "no failed run on branch 'feat/cache'",
    }


async def test_expired_log_is_reported_not_fatal(github: FakeGitHub, workspace: Path) -> None:
    del github.logs[71]
    r = await triage(github, workspace, run_id=9001)
    assert r.ok, r.error
    job = r.data["failed_jobs"][0]
    assert job["first_error"] is None and "404" in job["log_error"]
    assert job["step"]["name"] == "Run pytest -q"


@pytest.mark.parametrize(
    ("setup", "payload", "expected"),
    [
        ("token", {"run_id": 9001}, "GitHub answered 401"),
        (None, {"run_id": 4242}, "GitHub answered 404"),
        ("500", {"branch": "main"}, "GitHub answered 500"),
    ],
)
async def test_service_errors(
    github: FakeGitHub, workspace: Path, setup: str | None, payload: dict[str, Any], expected: str
) -> None:
    env = grants(github)
    if setup == "token":
        env["GITHUB_TOKEN"] = "revoked"
    if setup == "500":
        github.fail["/repos/"] = 500
    r = await run_skill("ci-triage", {"repo": REPO, **payload}, workspace, env)
    assert expected in failure(r)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"repo": "octo-org"}, "'repo' must be 'owner/name'"),
        ({"repo": REPO, "run_id": -1}, "'run_id' must be a positive integer"),
        ({"repo": REPO, "branch": "a b"}, "'branch' must be a branch name"),
        ({"repo": REPO, "max_jobs": 50}, "'max_jobs' must be an integer from 0 to 5"),
    ],
)
async def test_bad_input_is_refused(
    github: FakeGitHub, workspace: Path, payload: dict[str, Any], why: str
) -> None:
    r = await run_skill("ci-triage", payload, workspace, grants(github))
    assert why in refusal(r)
    assert github.requests == []


async def test_gateway_triages_a_failed_run(github: FakeGitHub, home: Path) -> None:
    async with skill_gateway(home, {"ci-triage": grants(github)}) as gw:
        reply, tool, card = await call_skill(gw, "ci-triage", {"repo": REPO, "branch": "main"})
    assert card is None  # reading needs no confirmation
    data = tool_json(tool)
    assert data["failed_jobs"][0]["first_error"]["line"] == 16
    assert "AssertionError: assert 'denied' == 'ok'" in reply["reply"]
    assert 'trust="untrusted"' in tool
