"""The bundled ``github`` skill against a loopback fake of the GitHub REST API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bundled_support import call_skill, failure, refusal, run_skill, skill_gateway, tool_json
from fakes_devops import FakeGitHub

from nexflow.skills import SkillInputInvalid, SkillPermissionDenied
from nexflow.skills.isolation import IsolationLevel
from nexflow.skills.result import RunResult

REPO = "octo-org/demo"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


def grants(fake: FakeGitHub, token: str | None = None) -> dict[str, str]:
    return {"GITHUB_TOKEN": token or fake.token, "GITHUB_API_URL": fake.url}


async def gh(fake: FakeGitHub, workspace: Path, payload: dict[str, Any], **kw: Any) -> RunResult:
    env = kw.pop("env", None) or grants(fake)
    return await run_skill("github", {"repo": REPO, **payload}, workspace, env, **kw)


async def test_issues_are_listed_without_pull_requests(github: FakeGitHub, workspace: Path) -> None:
    r = await gh(github, workspace, {"action": "list_issues"})
    assert r.ok, (r.error, r.stderr_tail)
    numbers = [i["number"] for i in r.data["items"]]
    assert numbers == [14, 12]  # open ones, newest first; PR 7 is left out
    first = r.data["items"][1]
    assert first["labels"] == ["bug"] and first["author"] == "mona"
    assert first["url"] == f"https://github.com/{REPO}/issues/12"
    seen = github.seen("GET", f"/repos/{REPO}/issues")[0]
    assert seen.headers["authorization"] == f"Bearer {github.token}"
    assert seen.headers["x-github-api-version"] == "2022-11-28"
    r = await gh(github, workspace, {"action": "list_issues", "labels": ["bug"], "state": "all"})
    assert [i["number"] for i in r.data["items"]] == [12]
    assert github.requests[-1].query["labels"] == ["bug"]


async def test_get_issue_with_comments(github: FakeGitHub, workspace: Path) -> None:
    r = await gh(github, workspace, {"action": "get_issue", "number": 12})
    assert r.ok, r.error
    issue = r.data["issue"]
    assert issue["title"] == "Login fails on Safari" and "Safari 17" in issue["body"]
    assert issue["comment_list"][0] == {
        "author": "hubot",
        "created_at": "2026-12-01T11:30:00Z",
        "body": "Reproduced on 17.1 too.",
    }
    assert issue["is_pull_request"] is False


async def test_pull_request_with_checks(github: FakeGitHub, workspace: Path) -> None:
    r = await gh(github, workspace, {"action": "get_pr", "number": 7})
    assert r.ok, r.error
    pr = r.data["pr"]
    assert (pr["head"], pr["base"], pr["additions"]) == ("feat/cache", "main", 40)
    assert pr["checks"] == {
        "state": "failure",
        "total": 3,
        "counts": {"failure": 1, "in_progress": 1, "success": 1},
        "failing": ["test (3.12)"],
        "pending": ["docs"],
    }
    listed = await gh(github, workspace, {"action": "list_prs"})
    assert [p["number"] for p in listed.data["items"]] == [7]


async def test_check_runs_for_a_ref(github: FakeGitHub, workspace: Path) -> None:
    r = await gh(github, workspace, {"action": "check_runs", "ref": "main"})
    assert r.ok, r.error
    assert r.data["summary"]["state"] == "success"
    assert [c["name"] for c in r.data["items"]] == ["lint"]
    r = await gh(github, workspace, {"action": "check_runs", "ref": "no-such-sha"})
    assert "422" in failure(r) and "No commit found" in failure(r)


async def test_workflow_runs_and_jobs(github: FakeGitHub, workspace: Path) -> None:
    r = await gh(github, workspace, {"action": "list_runs", "branch": "main", "status": "failure"})
    assert r.ok, r.error
    assert [run["id"] for run in r.data["items"]] == [9001]
    assert r.data["items"][0]["conclusion"] == "failure"
    r = await gh(github, workspace, {"action": "list_runs", "workflow": "ci.yml", "limit": 2})
    assert len(r.data["items"]) == 2
    assert github.requests[-1].path == f"/repos/{REPO}/actions/workflows/ci.yml/runs"
    r = await gh(github, workspace, {"action": "get_run", "run_id": 9001})
    assert r.ok, r.error
    failed = [j for j in r.data["jobs"] if j["conclusion"] == "failure"]
    assert failed[0]["name"] == "test (3.12)"
    assert failed[0]["failed_steps"] == [
        {"number": 4, "name": "Run pytest -q", "conclusion": "failure"}
    ]


async def test_job_log_tail_without_the_token_on_the_redirect(
    github: FakeGitHub, workspace: Path, level: IsolationLevel
) -> None:
    r = await gh(
        github, workspace, {"action": "job_logs", "job_id": 71, "tail_lines": 4}, level=level
    )
    assert r.ok, (r.error, r.stderr_tail)
    assert r.data["log"].splitlines() == [
        "FAILED tests/test_api.py::test_login - AssertionError",
        "1 failed, 7 passed in 0.52s",
        "##[error]Process completed with exit code 1.",
        "Post job cleanup.",
    ]
    assert r.data["truncated"] is True and r.data["lines"] == 4
    assert github.blob_auth == [None]  # storage got the signed URL, never the token


async def test_create_issue_posts_the_issue(github: FakeGitHub, workspace: Path) -> None:
    payload = {"action": "create_issue", "title": "Flaky test_login", "labels": "bug, ci"}
    r = await gh(github, workspace, {**payload, "body": "Seen in run 9001."})
    assert r.ok, r.error
    assert r.data["issue"]["number"] == 15 and r.data["issue"]["labels"] == ["bug", "ci"]
    assert github.issues[15]["body"] == "Seen in run 9001."
    sent = github.seen("POST", "/issues")[0].body
    assert sent == {
        "title": "Flaky test_login",
        "body": "Seen in run 9001.",
        "labels": ["bug", "ci"],
    }


@pytest.mark.parametrize(
    ("payload", "token", "fail", "expected"),
    [
        ({"action": "list_issues"}, "wrong", None, "401"),
        ({"action": "get_issue", "number": 999}, None, None, "404"),
        ({"action": "list_runs"}, None, 500, "500"),
        ({"action": "get_run", "run_id": 9001}, None, 503, "503"),
    ],
)
async def test_service_errors_are_clear(
    github: FakeGitHub,
    workspace: Path,
    payload: dict[str, Any],
    token: str | None,
    fail: int | None,
    expected: str,
) -> None:
    if fail:
        github.fail["/repos/"] = fail
    r = await gh(github, workspace, payload, env=grants(github, token))
    said = failure(r)
    assert f"GitHub answered {expected}" in said
    hints = {
        "401": "Bad credentials (authentication failed",
        "404": "Not Found (not found",
        "500": "the service failed",
        "503": "the service failed",
    }
    assert hints[expected] in said


async def test_unreachable_service(workspace: Path) -> None:
    with FakeGitHub() as fake:
        env = grants(fake)
    r = await run_skill("github", {"action": "list_prs", "repo": REPO}, workspace, env)
    assert "cannot reach GitHub at http://127.0.0.1" in failure(r)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"action": "list_issues", "repo": "not-a-repo"}, "'repo' must be 'owner/name'"),
        ({"action": "get_issue", "repo": REPO}, "'number' must be a positive integer"),
        ({"action": "create_issue", "repo": REPO, "title": " "}, "'title' must be a non-empty"),
        ({"action": "check_runs", "repo": REPO, "ref": "a b"}, "'ref' must be a branch"),
        ({"action": "job_logs", "repo": REPO, "job_id": 71, "tail_lines": 0}, "'tail_lines'"),
    ],
)
async def test_bad_input_is_refused(
    github: FakeGitHub, workspace: Path, payload: dict[str, Any], why: str
) -> None:
    r = await run_skill("github", payload, workspace, grants(github))
    assert why in refusal(r)
    assert github.requests == []  # nothing was asked of GitHub


async def test_schema_and_grants_are_checked_before_running(
    github: FakeGitHub, workspace: Path
) -> None:
    with pytest.raises(SkillInputInvalid, match="is not one of"):
        await gh(github, workspace, {"action": "delete_repo"})
    with pytest.raises(SkillPermissionDenied, match="GITHUB_TOKEN"):
        await run_skill(
            "github",
            {"action": "list_issues", "repo": REPO},
            workspace,
            {"GITHUB_API_URL": github.url},  # the token was not granted
            host_env=grants(github),
        )
    assert github.requests == []


# -- through the gateway -----------------------------------------------------------------


async def test_gateway_reads_issues_from_github(github: FakeGitHub, home: Path) -> None:
    async with skill_gateway(home, {"github": grants(github)}) as gw:
        reply, tool, card = await call_skill(gw, "github", {"action": "list_issues", "repo": REPO})
    assert card is None
    data = tool_json(tool)
    assert [i["title"] for i in data["items"]] == ["Dark mode", "Login fails on Safari"]
    assert "untrusted" in tool  # issue texts are someone else's words
    assert "Login fails on Safari" in reply["reply"]


async def test_gateway_creates_an_issue_only_after_confirmation(
    github: FakeGitHub, home: Path
) -> None:
    payload = {"action": "create_issue", "repo": REPO, "title": "Flaky test_login"}
    async with skill_gateway(home, {"github": grants(github)}) as gw:
        reply, tool, card = await call_skill(gw, "github", payload, approve=True)
    assert card is not None and "create_issue" in card["detail"]
    assert "Flaky test_login" in card["detail"]
    assert tool_json(tool)["issue"]["number"] == 15
    assert github.issues[15]["title"] == "Flaky test_login"
    assert "issues/15" in reply["reply"]


async def test_gateway_declined_issue_leaves_github_untouched(
    github: FakeGitHub, home: Path
) -> None:
    before = dict(github.issues)
    payload = {"action": "create_issue", "repo": REPO, "title": "Should not exist"}
    async with skill_gateway(home, {"github": grants(github)}) as gw:
        _, tool, card = await call_skill(gw, "github", payload, approve=False)
    assert card is not None
    assert "declined" in tool
    assert github.issues == before
    assert github.seen("POST", "/issues") == []


async def test_a_huge_log_stays_under_the_output_limit(github: FakeGitHub, workspace: Path) -> None:
    github.logs[71] = "".join(f"{n:05d} " + "y" * 994 + "\n" for n in range(1, 3001))  # 3 MB
    r = await gh(github, workspace, {"action": "job_logs", "job_id": 71, "tail_lines": 2000})
    assert r.ok, r.error
    lines = r.data["log"].splitlines()
    assert lines[-1].startswith("03000 ") and len(lines[-1]) == 500  # clipped lines
    assert len(r.data["log"]) <= 100_000 and r.data["lines"] == len(lines)
    assert r.data["first_line"] == 3001 - len(lines) and r.data["truncated"] is True
