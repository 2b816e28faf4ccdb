"""The bundled ``gitlab`` skill against a loopback fake of GitLab's REST API v4."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bundled_support import call_skill, failure, refusal, run_skill, skill_gateway, tool_json
from fakes_gitlab import FakeGitLab

from nexflow.skills import SkillInputInvalid
from nexflow.skills.result import RunResult


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    with FakeGitLab() as fake:
        yield fake


def grants(fake: FakeGitLab, token: str | None = None) -> dict[str, str]:
    return {"GITLAB_TOKEN": token or fake.token, "GITLAB_URL": fake.url + "/"}


async def gl(fake: FakeGitLab, workspace: Path, payload: dict[str, Any], **kw: Any) -> RunResult:
    env = kw.pop("env", None) or grants(fake)
    return await run_skill("gitlab", {"project": "platform/api", **payload}, workspace, env)


async def test_pipelines_by_path_and_by_id(gitlab: FakeGitLab, workspace: Path) -> None:
    r = await gl(gitlab, workspace, {"action": "list_pipelines", "ref": "main", "limit": 5})
    assert r.ok, (r.error, r.stderr_tail)
    assert [(p["id"], p["status"]) for p in r.data["items"]] == [(501, "failed"), (500, "success")]
    assert r.data["items"][0]["sha"] == "c0ffeec0ffee"
    seen = gitlab.requests[-1]
    assert seen.path == "/api/v4/projects/platform%2Fapi/pipelines"  # the path, encoded
    assert seen.headers["private-token"] == gitlab.token
    assert seen.query["ref"] == ["main"] and seen.query["per_page"] == ["5"]
    r = await gl(
        gitlab, workspace, {"action": "list_pipelines", "project": 42, "status": "success"}
    )
    assert [p["id"] for p in r.data["items"]] == [500]
    assert gitlab.requests[-1].path == "/api/v4/projects/42/pipelines"


async def test_pipeline_with_its_failed_jobs(gitlab: FakeGitLab, workspace: Path) -> None:
    r = await gl(gitlab, workspace, {"action": "get_pipeline", "pipeline_id": 501})
    assert r.ok, r.error
    p = r.data["pipeline"]
    assert p["job_counts"] == {"failed": 1, "success": 1} and p["user"] == "alice"
    assert [(j["id"], j["failure_reason"]) for j in p["failed_jobs"]] == [(902, "script_failure")]
    r = await gl(
        gitlab, workspace, {"action": "pipeline_jobs", "pipeline_id": 501, "scope": "failed"}
    )
    assert [j["name"] for j in r.data["items"]] == ["unit"]
    assert gitlab.requests[-1].query["scope[]"] == ["failed"]


async def test_job_trace_tail_is_clean(gitlab: FakeGitLab, workspace: Path) -> None:
    r = await gl(gitlab, workspace, {"action": "job_trace", "job_id": 902, "tail_lines": 2})
    assert r.ok, r.error
    assert r.data["log"] == "not ok 300 - case 300\nERROR: Job failed: exit code 2"
    assert r.data["first_line"] == 302 and r.data["truncated"] is True
    r = await gl(gitlab, workspace, {"action": "job_trace", "job_id": 902, "tail_lines": 5000})
    lines = r.data["log"].splitlines()
    assert lines[:2] == ["Running with gitlab-runner 17.5.0 (abc123)", "$ make test"]
    assert "\x1b" not in r.data["log"] and r.data["lines"] == 303


async def test_merge_requests(gitlab: FakeGitLab, workspace: Path) -> None:
    r = await gl(gitlab, workspace, {"action": "list_mrs"})
    assert r.ok, r.error
    assert [(m["iid"], m["author"], m["merge_status"]) for m in r.data["items"]] == [
        (15, "alice", "mergeable")
    ]
    assert gitlab.requests[-1].query["state"] == ["opened"]
    r = await gl(gitlab, workspace, {"action": "get_mr", "iid": 15})
    mr = r.data["merge_request"]
    assert mr["description"] == "Adds a token bucket."
    assert mr["pipeline"]["status"] == "failed" and mr["changes_count"] == "4"
    r = await gl(gitlab, workspace, {"action": "list_mrs", "state": "merged"})
    assert r.data["items"] == []


@pytest.mark.parametrize(
    ("payload", "token", "fail", "expected"),
    [
        ({"action": "list_mrs"}, "glpat-wrong", None, "401 to GET /projects/platform%2Fapi"),
        (
            {"action": "list_pipelines", "project": "other/thing"},
            None,
            None,
            "404 Project Not Found",
        ),
        ({"action": "get_mr", "iid": 99}, None, None, "404 Not found"),
        ({"action": "job_trace", "job_id": 902}, None, 500, "answered 500"),
    ],
)
async def test_service_errors(
    gitlab: FakeGitLab,
    workspace: Path,
    payload: dict[str, Any],
    token: str | None,
    fail: int | None,
    expected: str,
) -> None:
    if fail:
        gitlab.fail["/api/v4/"] = fail
    r = await gl(gitlab, workspace, payload, env=grants(gitlab, token))
    assert expected in failure(r)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"action": "list_mrs", "project": "../etc"}, "'project' must be a project id"),
        ({"action": "list_mrs", "project": True}, "'project' must be a project id"),
        ({"action": "get_pipeline"}, "'pipeline_id' must be a positive integer"),
        ({"action": "list_pipelines", "status": "green"}, "'status' must be one of"),
        ({"action": "job_trace", "job_id": 0}, "'job_id' must be a positive integer"),
    ],
)
async def test_bad_input_is_refused(
    gitlab: FakeGitLab, workspace: Path, payload: dict[str, Any], why: str
) -> None:
    try:
        r = await gl(gitlab, workspace, payload)
    except SkillInputInvalid as e:  # the schema caught it before the program ran
        assert "project" in str(e)
        return
    assert why in refusal(r)
    assert gitlab.requests == []


async def test_gateway_reads_a_pipeline(gitlab: FakeGitLab, home: Path) -> None:
    payload = {"action": "get_pipeline", "project": "platform/api", "pipeline_id": 501}
    async with skill_gateway(home, {"gitlab": grants(gitlab)}) as gw:
        reply, tool, card = await call_skill(gw, "gitlab", payload)
    assert card is None
    assert tool_json(tool)["pipeline"]["failed_jobs"][0]["name"] == "unit"
    assert "script_failure" in reply["reply"]
