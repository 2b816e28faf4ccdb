"""github: issues, pull requests, check runs and Actions runs through the GitHub REST API.

GITHUB_TOKEN and GITHUB_API_URL come from the admin (config ``skills.secrets``). Every
answer is shortened: lists hold at most 50 items, bodies and logs are clipped.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))
import ghkit
import httpkit
import skillkit

REF = re.compile(r"^[A-Za-z0-9_./@-]{1,200}$")
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ")
BODY_CHARS = 4000
COMMENT_CHARS = 1000
MAX_COMMENTS = 10
MAX_LIST = 50
LOG_TAIL_BYTES = 256 * 1024
TAIL_LINES_DEFAULT = 200
TAIL_LINES_MAX = 2000
LOG_CHARS = 100_000  # even as 4-byte UTF-8, well under maxOutputKb
FAILING = frozenset({"failure", "timed_out", "cancelled", "action_required", "startup_failure"})


# -- input -----------------------------------------------------------------------------


def limit_of(args: dict[str, Any], default: int = 20) -> int:
    return skillkit.positive_int(args, "limit", default, most=MAX_LIST)


def text_of(args: dict[str, Any], key: str, *, required: bool = False, limit: int = 256) -> str:
    value = args.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise skillkit.Refused(f"'{key}' must be a non-empty string")
    if len(value) > limit:
        raise skillkit.Refused(f"'{key}' is {len(value)} characters; the limit is {limit}")
    return value


def ref_of(args: dict[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not REF.match(value) or ".." in value:
        raise skillkit.Refused(f"'{key}' must be a branch, tag or commit SHA")
    return value


def labels_of(args: dict[str, Any]) -> list[str]:
    value = args.get("labels")
    if value is None:
        return []
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise skillkit.Refused("'labels' must be a list of label names")
    return value


def state_of(args: dict[str, Any]) -> str:
    state = args.get("state", "open")
    if state not in ("open", "closed", "all"):
        raise skillkit.Refused("'state' must be open, closed or all")
    return state


# -- rendering ---------------------------------------------------------------------------


def login(user: Any) -> str | None:
    return user.get("login") if isinstance(user, dict) else None


def issue_item(issue: dict[str, Any]) -> dict[str, Any]:
    return {
        "number": issue.get("number"),
        "title": httpkit.clip(issue.get("title"), 200),
        "state": issue.get("state"),
        "author": login(issue.get("user")),
        "labels": [lb.get("name") for lb in issue.get("labels") or [] if isinstance(lb, dict)],
        "comments": issue.get("comments"),
        "created_at": issue.get("created_at"),
        "updated_at": issue.get("updated_at"),
        "url": issue.get("html_url"),
    }


def pr_item(pr: dict[str, Any]) -> dict[str, Any]:
    return {
        "number": pr.get("number"),
        "title": httpkit.clip(pr.get("title"), 200),
        "state": pr.get("state"),
        "draft": pr.get("draft"),
        "author": login(pr.get("user")),
        "head": (pr.get("head") or {}).get("ref"),
        "base": (pr.get("base") or {}).get("ref"),
        "updated_at": pr.get("updated_at"),
        "url": pr.get("html_url"),
    }


def check_item(run: dict[str, Any]) -> dict[str, Any]:
    output = run.get("output") or {}
    return {
        "id": run.get("id"),
        "name": run.get("name"),
        "status": run.get("status"),
        "conclusion": run.get("conclusion"),
        "title": httpkit.clip(output.get("title"), 200) or None,
        "url": run.get("html_url"),
    }


def checks_summary(runs: list[dict[str, Any]], total: int) -> dict[str, Any]:
    counts = Counter(r.get("conclusion") or r.get("status") or "unknown" for r in runs)
    failing = [r.get("name") for r in runs if r.get("conclusion") in FAILING]
    pending = [r.get("name") for r in runs if r.get("status") != "completed"]
    if failing:
        overall = "failure"
    elif pending:
        overall = "pending"
    elif runs:
        overall = "success"
    else:
        overall = "none"
    return {
        "state": overall,
        "total": total,
        "counts": dict(sorted(counts.items())),
        "failing": failing[:20],
        "pending": pending[:20],
    }


def job_item(job: dict[str, Any]) -> dict[str, Any]:
    steps = [s for s in job.get("steps") or [] if isinstance(s, dict)]
    return {
        "id": job.get("id"),
        "name": job.get("name"),
        "status": job.get("status"),
        "conclusion": job.get("conclusion"),
        "started_at": job.get("started_at"),
        "completed_at": job.get("completed_at"),
        "failed_steps": [
            {"number": s.get("number"), "name": s.get("name"), "conclusion": s.get("conclusion")}
            for s in steps
            if s.get("conclusion") in FAILING
        ],
        "url": job.get("html_url"),
    }


# -- actions -----------------------------------------------------------------------------


def list_issues(api: httpkit.Client, repo: str, args: dict[str, Any]) -> dict[str, Any]:
    limit = limit_of(args)
    params: dict[str, Any] = {"state": state_of(args), "per_page": min(limit * 2, 100)}
    labels = labels_of(args)
    if labels:
        params["labels"] = ",".join(labels)
    found = api.get(f"/repos/{repo}/issues", params)
    # The issues endpoint lists pull requests too; they carry a "pull_request" key.
    issues = [i for i in found if isinstance(i, dict) and "pull_request" not in i]
    return {"items": [issue_item(i) for i in issues[:limit]], "count": len(issues[:limit])}


def get_issue(api: httpkit.Client, repo: str, args: dict[str, Any]) -> dict[str, Any]:
    number = skillkit.positive_int(args, "number")
    issue = api.get(f"/repos/{repo}/issues/{number}")
    item = issue_item(issue)
    item["body"] = httpkit.clip(issue.get("body"), BODY_CHARS)
    item["is_pull_request"] = "pull_request" in issue
    comments: list[dict[str, Any]] = []
    if args.get("comments", True) is not False and issue.get("comments"):
        raw = api.get(f"/repos/{repo}/issues/{number}/comments", {"per_page": MAX_COMMENTS})
        comments = [
            {
                "author": login(c.get("user")),
                "created_at": c.get("created_at"),
                "body": httpkit.clip(c.get("body"), COMMENT_CHARS),
            }
            for c in raw
            if isinstance(c, dict)
        ]
    item["comment_list"] = comments
    return {"issue": item}


def create_issue(api: httpkit.Client, repo: str, args: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"title": text_of(args, "title", required=True)}
    text = text_of(args, "body", limit=65536)
    if text:
        body["body"] = text
    labels = labels_of(args)
    if labels:
        body["labels"] = labels
    created = api.post(f"/repos/{repo}/issues", body)
    return {"issue": issue_item(created)}


def list_prs(api: httpkit.Client, repo: str, args: dict[str, Any]) -> dict[str, Any]:
    limit = limit_of(args)
    found = api.get(f"/repos/{repo}/pulls", {"state": state_of(args), "per_page": limit})
    items = [pr_item(p) for p in found[:limit] if isinstance(p, dict)]
    return {"items": items, "count": len(items)}


def get_pr(api: httpkit.Client, repo: str, args: dict[str, Any]) -> dict[str, Any]:
    number = skillkit.positive_int(args, "number")
    pr = api.get(f"/repos/{repo}/pulls/{number}")
    item = pr_item(pr)
    sha = (pr.get("head") or {}).get("sha")
    item.update(
        {
            "body": httpkit.clip(pr.get("body"), BODY_CHARS),
            "merged": pr.get("merged"),
            "mergeable": pr.get("mergeable"),
            "mergeable_state": pr.get("mergeable_state"),
            "sha": sha,
            "commits": pr.get("commits"),
            "additions": pr.get("additions"),
            "deletions": pr.get("deletions"),
            "changed_files": pr.get("changed_files"),
        }
    )
    if sha:
        found = api.get(f"/repos/{repo}/commits/{sha}/check-runs", {"per_page": 100})
        runs = [r for r in found.get("check_runs") or [] if isinstance(r, dict)]
        item["checks"] = checks_summary(runs, int(found.get("total_count") or len(runs)))
    return {"pr": item}


def check_runs(api: httpkit.Client, repo: str, args: dict[str, Any]) -> dict[str, Any]:
    ref = ref_of(args, "ref")
    found = api.get(f"/repos/{repo}/commits/{httpkit.segment(ref)}/check-runs", {"per_page": 100})
    runs = [r for r in found.get("check_runs") or [] if isinstance(r, dict)]
    total = int(found.get("total_count") or len(runs))
    return {
        "ref": ref,
        "summary": checks_summary(runs, total),
        "items": [check_item(r) for r in runs[: limit_of(args, MAX_LIST)]],
    }


def list_runs(api: httpkit.Client, repo: str, args: dict[str, Any]) -> dict[str, Any]:
    limit = limit_of(args)
    params: dict[str, Any] = {"per_page": limit}
    for key in ("branch", "status", "event"):
        if args.get(key) is not None:
            params[key] = ref_of(args, key)
    found = api.get(ghkit.runs_path(repo, args.get("workflow")), params)
    runs = [r for r in found.get("workflow_runs") or [] if isinstance(r, dict)]
    return {"items": [ghkit.run_item(r) for r in runs[:limit]], "total": found.get("total_count")}


def get_run(api: httpkit.Client, repo: str, args: dict[str, Any]) -> dict[str, Any]:
    run_id = skillkit.positive_int(args, "run_id")
    run = api.get(f"/repos/{repo}/actions/runs/{run_id}")
    items = [job_item(j) for j in ghkit.latest_jobs(api, repo, run_id)]
    return {"run": ghkit.run_item(run), "jobs": items[:MAX_LIST]}


def job_logs(api: httpkit.Client, repo: str, args: dict[str, Any]) -> dict[str, Any]:
    job_id = skillkit.positive_int(args, "job_id")
    tail = skillkit.positive_int(args, "tail_lines", TAIL_LINES_DEFAULT, most=TAIL_LINES_MAX)
    # GitHub answers 302 with a short-lived storage URL; the token is not sent there.
    text = api.text(f"/repos/{repo}/actions/jobs/{job_id}/logs", tail_bytes=LOG_TAIL_BYTES)
    lines = httpkit.split_lines(text.body)
    if args.get("timestamps") is not True:
        lines = [STAMP.sub("", line, count=1) for line in lines]
    return {"job_id": job_id, **httpkit.log_tail(text, lines, tail, LOG_CHARS)}


ACTIONS = {
    "list_issues": list_issues,
    "get_issue": get_issue,
    "create_issue": create_issue,
    "list_prs": list_prs,
    "get_pr": get_pr,
    "check_runs": check_runs,
    "list_runs": list_runs,
    "get_run": get_run,
    "job_logs": job_logs,
}


def run(args: dict[str, Any]) -> dict[str, Any]:
    action, handler = skillkit.action_of(args, ACTIONS)
    repo = ghkit.repo_of(args)
    api = ghkit.client()
    with httpkit.answer_shape("GitHub"):
        return {"action": action, "repo": repo, **handler(api, repo, args)}


if __name__ == "__main__":
    skillkit.main("github", run)
