"""gitlab: pipelines, their jobs and job logs, and merge requests through GitLab's REST API.

GITLAB_URL (the instance, e.g. https://gitlab.com) and GITLAB_TOKEN come from the admin
(config ``skills.secrets``); the token travels in the ``PRIVATE-TOKEN`` header.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))
import httpkit
import skillkit

PROJECT_PATH = re.compile(r"^[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+$")
REF = re.compile(r"^[A-Za-z0-9_./@-]{1,200}$")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
SECTION = re.compile(r"section_(?:start|end):\d+:[A-Za-z0-9_.-]+(?:\[[^\]]*\])?")
PIPELINE_STATUS = (
    "created",
    "waiting_for_resource",
    "preparing",
    "pending",
    "running",
    "success",
    "failed",
    "canceled",
    "skipped",
    "manual",
    "scheduled",
)
MR_STATES = ("opened", "closed", "locked", "merged", "all")
MAX_LIST = 50
BODY_CHARS = 4000
LOG_TAIL_BYTES = 256 * 1024
TAIL_LINES_DEFAULT = 200
TAIL_LINES_MAX = 2000
LOG_CHARS = 100_000  # even as 4-byte UTF-8, well under maxOutputKb


def client() -> httpkit.Client:
    return httpkit.Client(
        httpkit.base_url("GITLAB_URL", "https://gitlab.com") + "/api/v4",
        service="GitLab",
        headers={"PRIVATE-TOKEN": skillkit.env("GITLAB_TOKEN")},
    )


# -- input -----------------------------------------------------------------------------


def project_of(args: dict[str, Any]) -> str:
    """The project as a path segment: its id, or its path URL-encoded (a/b → a%2Fb)."""
    value = args.get("project")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    if isinstance(value, str):
        text = value.strip().strip("/")
        if text.isdigit():
            return text
        if PROJECT_PATH.match(text) and ".." not in text:
            return httpkit.segment(text)
    raise skillkit.Refused("'project' must be a project id or its path, e.g. 'group/project'")


def limit_of(args: dict[str, Any]) -> int:
    return skillkit.positive_int(args, "limit", 20, most=MAX_LIST)


def choice(args: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str | None:
    value = args.get(key)
    if value is None:
        return None
    if value not in allowed:
        raise skillkit.Refused(f"'{key}' must be one of: {', '.join(allowed)}")
    return str(value)


# -- rendering ---------------------------------------------------------------------------


def user(value: Any) -> str | None:
    return value.get("username") if isinstance(value, dict) else None


def pipeline_item(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": p.get("id"),
        "iid": p.get("iid"),
        "ref": p.get("ref"),
        "sha": (p.get("sha") or "")[:12] or None,
        "status": p.get("status"),
        "source": p.get("source"),
        "created_at": p.get("created_at"),
        "updated_at": p.get("updated_at"),
        "url": p.get("web_url"),
    }


def job_item(j: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": j.get("id"),
        "name": j.get("name"),
        "stage": j.get("stage"),
        "status": j.get("status"),
        "duration": j.get("duration"),
        "failure_reason": j.get("failure_reason"),
        "allow_failure": j.get("allow_failure"),
        "url": j.get("web_url"),
    }


def mr_item(mr: dict[str, Any]) -> dict[str, Any]:
    return {
        "iid": mr.get("iid"),
        "title": httpkit.clip(mr.get("title"), 200),
        "state": mr.get("state"),
        "draft": mr.get("draft"),
        "author": user(mr.get("author")),
        "source": mr.get("source_branch"),
        "target": mr.get("target_branch"),
        "merge_status": mr.get("detailed_merge_status") or mr.get("merge_status"),
        "updated_at": mr.get("updated_at"),
        "url": mr.get("web_url"),
    }


def clean_trace(text: str) -> list[str]:
    """Trace lines without colour codes, section markers and overwritten progress."""
    lines = []
    for raw in httpkit.split_lines(text):
        line = SECTION.sub("", ANSI.sub("", raw))
        if "\r" in line:
            line = [part for part in line.split("\r") if part.strip()][-1:] or [""]
            line = line[0]
        lines.append(line.rstrip())
    return lines


# -- actions -----------------------------------------------------------------------------


def list_pipelines(api: httpkit.Client, project: str, args: dict[str, Any]) -> dict[str, Any]:
    limit = limit_of(args)
    params: dict[str, Any] = {"per_page": limit, "order_by": "id", "sort": "desc"}
    params["status"] = choice(args, "status", PIPELINE_STATUS)
    if args.get("ref") is not None:
        ref = args["ref"]
        if not isinstance(ref, str) or not REF.match(ref) or ".." in ref:
            raise skillkit.Refused("'ref' must be a branch or tag name")
        params["ref"] = ref
    found = api.get(f"/projects/{project}/pipelines", params)
    items = [pipeline_item(p) for p in found[:limit] if isinstance(p, dict)]
    return {"items": items, "count": len(items)}


def jobs_of(api: httpkit.Client, project: str, pipeline: int, scope: str | None) -> list[Any]:
    params: dict[str, Any] = {"per_page": 100}
    if scope is not None:
        params["scope[]"] = scope
    found = api.get(f"/projects/{project}/pipelines/{pipeline}/jobs", params)
    return [job_item(j) for j in found if isinstance(j, dict)]


def get_pipeline(api: httpkit.Client, project: str, args: dict[str, Any]) -> dict[str, Any]:
    pid = skillkit.positive_int(args, "pipeline_id")
    p = api.get(f"/projects/{project}/pipelines/{pid}")
    item = pipeline_item(p)
    item.update(
        {"duration": p.get("duration"), "user": user(p.get("user")), "coverage": p.get("coverage")}
    )
    jobs = jobs_of(api, project, pid, None)
    item["job_counts"] = dict(sorted(Counter(j["status"] or "unknown" for j in jobs).items()))
    item["failed_jobs"] = [j for j in jobs if j["status"] == "failed"][:20]
    return {"pipeline": item}


def pipeline_jobs(api: httpkit.Client, project: str, args: dict[str, Any]) -> dict[str, Any]:
    pid = skillkit.positive_int(args, "pipeline_id")
    scope = choice(args, "scope", PIPELINE_STATUS)
    jobs = jobs_of(api, project, pid, scope)
    return {"pipeline_id": pid, "items": jobs[:MAX_LIST]}


def job_trace(api: httpkit.Client, project: str, args: dict[str, Any]) -> dict[str, Any]:
    job_id = skillkit.positive_int(args, "job_id")
    tail = skillkit.positive_int(args, "tail_lines", TAIL_LINES_DEFAULT, most=TAIL_LINES_MAX)
    text = api.text(f"/projects/{project}/jobs/{job_id}/trace", tail_bytes=LOG_TAIL_BYTES)
    return {"job_id": job_id, **httpkit.log_tail(text, clean_trace(text.body), tail, LOG_CHARS)}


def list_mrs(api: httpkit.Client, project: str, args: dict[str, Any]) -> dict[str, Any]:
    limit = limit_of(args)
    params = {"state": choice(args, "state", MR_STATES) or "opened", "per_page": limit}
    found = api.get(f"/projects/{project}/merge_requests", params)
    items = [mr_item(m) for m in found[:limit] if isinstance(m, dict)]
    return {"items": items, "count": len(items)}


def get_mr(api: httpkit.Client, project: str, args: dict[str, Any]) -> dict[str, Any]:
    iid = skillkit.positive_int(args, "iid")
    mr = api.get(f"/projects/{project}/merge_requests/{iid}")
    item = mr_item(mr)
    head = mr.get("head_pipeline") if isinstance(mr.get("head_pipeline"), dict) else None
    item.update(
        {
            "description": httpkit.clip(mr.get("description"), BODY_CHARS),
            "sha": (mr.get("sha") or "")[:12] or None,
            "changes_count": mr.get("changes_count"),
            "pipeline": (
                {"id": head.get("id"), "status": head.get("status"), "url": head.get("web_url")}
                if head
                else None
            ),
        }
    )
    return {"merge_request": item}


ACTIONS = {
    "list_pipelines": list_pipelines,
    "get_pipeline": get_pipeline,
    "pipeline_jobs": pipeline_jobs,
    "job_trace": job_trace,
    "list_mrs": list_mrs,
    "get_mr": get_mr,
}


def run(args: dict[str, Any]) -> dict[str, Any]:
    action, handler = skillkit.action_of(args, ACTIONS)
    project = project_of(args)
    api = client()
    with httpkit.answer_shape("GitLab"):
        result = handler(api, project, args)
    return {"action": action, "project": str(args["project"]), **result}


if __name__ == "__main__":
    skillkit.main("gitlab", run)
