"""A loopback fake of GitLab's REST API v4 (see :mod:`fakes_devops` for the server)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from fakes_devops import Answer, FakeService, Seen, first_param

# -- GitLab ------------------------------------------------------------------------------

GITLAB_TRACE = "\n".join(
    [
        "\x1b[0KRunning with gitlab-runner 17.5.0 (abc123)\x1b[0;m",
        "section_start:1764586800:step_script\r\x1b[0K\x1b[32;1m$ make test\x1b[0;m",
        *[f"ok {i} - case {i}" for i in range(1, 300)],
        "\x1b[31;1mnot ok 300 - case 300\x1b[0;m",
        "section_end:1764586860:step_script\r\x1b[0K"
        "\x1b[31;1mERROR: Job failed: exit code 2\x1b[0;m",
    ]
)


class FakeGitLab(FakeService):
    """GitLab's REST API v4 for one project, ``platform/api`` (id 42)."""

    def __init__(self, token: str = "glpat-test-token") -> None:
        super().__init__()
        self.token = token
        self.project_id = 42
        self.project_path = "platform/api"
        web = "https://gitlab.example.com/platform/api"
        self.pipelines = [
            {
                "id": 501,
                "iid": 77,
                "project_id": 42,
                "sha": "c0ffee" * 6 + "c0ff",
                "ref": "main",
                "status": "failed",
                "source": "push",
                "created_at": "2026-12-01T11:00:00.000Z",
                "updated_at": "2026-12-01T11:09:00.000Z",
                "web_url": f"{web}/-/pipelines/501",
            },
            {
                "id": 500,
                "iid": 76,
                "project_id": 42,
                "sha": "beef" * 10,
                "ref": "main",
                "status": "success",
                "source": "push",
                "created_at": "2026-11-30T11:00:00.000Z",
                "updated_at": "2026-11-30T11:07:00.000Z",
                "web_url": f"{web}/-/pipelines/500",
            },
        ]
        self.jobs = {
            501: [
                self._job(901, "build", "build", "success"),
                self._job(902, "unit", "test", "failed", "script_failure"),
            ]
        }
        self.traces = {902: GITLAB_TRACE, 901: "Running with gitlab-runner\nBuild ok\n"}
        self.merge_requests = [
            {
                "id": 3001,
                "iid": 15,
                "project_id": 42,
                "title": "Rate limit the login endpoint",
                "description": "Adds a token bucket.",
                "state": "opened",
                "draft": False,
                "author": {"id": 5, "username": "alice", "name": "Alice"},
                "source_branch": "feat/rate-limit",
                "target_branch": "main",
                "merge_status": "can_be_merged",
                "detailed_merge_status": "mergeable",
                "sha": "f00d" * 10,
                "updated_at": "2026-12-01T10:00:00.000Z",
                "web_url": f"{web}/-/merge_requests/15",
                "changes_count": "4",
                "head_pipeline": {
                    "id": 501,
                    "status": "failed",
                    "web_url": f"{web}/-/pipelines/501",
                },
            }
        ]
        p = r"/api/v4/projects/(?P<project>[^/]+)"
        self.route("GET", p + r"/pipelines", self._pipelines)
        self.route("GET", p + r"/pipelines/(?P<id>\d+)", self._pipeline)
        self.route("GET", p + r"/pipelines/(?P<id>\d+)/jobs", self._pipeline_jobs)
        self.route("GET", p + r"/jobs/(?P<id>\d+)/trace", self._trace)
        self.route("GET", p + r"/merge_requests", self._mrs)
        self.route("GET", p + r"/merge_requests/(?P<iid>\d+)", self._mr)

    def _job(
        self, jid: int, name: str, stage: str, status: str, reason: str | None = None
    ) -> dict[str, Any]:
        return {
            "id": jid,
            "name": name,
            "stage": stage,
            "status": status,
            "duration": 61.5,
            "allow_failure": False,
            "failure_reason": reason,
            "web_url": f"https://gitlab.example.com/platform/api/-/jobs/{jid}",
            "ref": "main",
        }

    def authorized(self, seen: Seen) -> Answer | None:
        if seen.headers.get("private-token") != self.token:
            return Answer(401, {"message": "401 Unauthorized"})
        return None

    def error(self, status: int, message: str) -> Answer:
        if status == 404:
            return Answer(404, {"message": "404 Not Found"})
        return Answer(status, {"message": message})

    def _project(self, m: re.Match[str]) -> bool:
        # The path arrives URL-encoded (platform%2Fapi); GitLab decodes it once.
        return unquote(m["project"]) in (str(self.project_id), self.project_path)

    def _pipelines(self, seen: Seen, m: re.Match[str]) -> Answer:
        if not self._project(m):
            return Answer(404, {"message": "404 Project Not Found"})
        ref, status = first_param(seen, "ref"), first_param(seen, "status")
        per_page = int(first_param(seen, "per_page", "20") or 20)
        found = [
            p
            for p in self.pipelines
            if (ref is None or p["ref"] == ref) and (status is None or p["status"] == status)
        ]
        return Answer(200, found[:per_page])

    def _pipeline(self, seen: Seen, m: re.Match[str]) -> Answer:
        for p in self.pipelines:
            if self._project(m) and p["id"] == int(m["id"]):
                return Answer(
                    200,
                    {**p, "duration": 540, "user": {"username": "alice"}, "coverage": "81.2"},
                )
        return Answer(404, {"message": "404 Not found"})

    def _pipeline_jobs(self, seen: Seen, m: re.Match[str]) -> Answer:
        if not self._project(m) or int(m["id"]) not in self.jobs:
            return Answer(404, {"message": "404 Not found"})
        scope = seen.query.get("scope[]") or seen.query.get("scope")
        jobs = [j for j in self.jobs[int(m["id"])] if not scope or j["status"] in scope]
        return Answer(200, jobs)

    def _trace(self, seen: Seen, m: re.Match[str]) -> Answer:
        trace = self.traces.get(int(m["id"]))
        if not self._project(m) or trace is None:
            return Answer(404, {"message": "404 Not found"})
        return Answer(200, text=trace)

    def _mrs(self, seen: Seen, m: re.Match[str]) -> Answer:
        if not self._project(m):
            return Answer(404, {"message": "404 Project Not Found"})
        state = first_param(seen, "state", "all")
        brief = [
            {k: v for k, v in mr.items() if k not in ("description", "head_pipeline")}
            for mr in self.merge_requests
            if state in ("all", mr["state"])
        ]
        return Answer(200, brief)

    def _mr(self, seen: Seen, m: re.Match[str]) -> Answer:
        for mr in self.merge_requests:
            if self._project(m) and mr["iid"] == int(m["iid"]):
                return Answer(200, mr)
        return Answer(404, {"message": "404 Not found"})
