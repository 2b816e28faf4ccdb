"""ci-triage: why did a GitHub Actions run fail? The failed jobs, their failing step,
the first error lines with line numbers, and where to read the whole log.

GITHUB_TOKEN and GITHUB_API_URL come from the admin (config ``skills.secrets``).
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))
import ghkit
import httpkit
import skillkit

BRANCH = re.compile(r"^[A-Za-z0-9_./@-]{1,200}$")
STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?Z ")
FAILED = frozenset({"failure", "timed_out", "startup_failure"})
LOG_TAIL_BYTES = 1024 * 1024
LINE_CHARS = 300
MAX_JOBS = 5
TIME_BUDGET = 45.0  # seconds for reading logs; metadata.timeoutSec is 90
EXCERPT_AFTER = 12
EXCERPT_MAX = 24

# What an error line looks like, most telling first. The runner's own
# "##[error]Process completed with exit code N." only says *that* a step failed, so it
# is used when nothing better is found.
ERROR = re.compile(
    r"Traceback \(most recent call last\)"
    r"|^E\s{2,}\S"  # pytest's failure detail
    r"|\bFAILED\b|\bFAIL:|^FAIL\b|--- FAIL:"
    r"|\b[Ee]rror(?:\[[A-Za-z0-9_]+\])?:"  # error: / error[E0308]: / Error: (gcc, rustc, tsc)
    r"|\bERROR\b|\b[A-Z]\w*(?:Error|Exception)\b"
    r"|npm ERR!|^fatal:|^panic:|Segmentation fault"
    r"|##\[error\]"
)
GENERIC = re.compile(r"##\[error\]Process completed with exit code \d+", re.IGNORECASE)
EXIT_CODE = re.compile(r"(?:exit code|exit status|exited with code)\s+(\d+)", re.IGNORECASE)
NOT_ERRORS = re.compile(r"\b0 (?:errors?|failed)\b|\berrors?: 0\b|--no-error", re.IGNORECASE)


@dataclass(frozen=True)
class Line:
    number: int
    text: str
    at: str | None  # the runner's timestamp, to the second, when the line has one


def parse_log(body: str, first_line: int) -> list[Line]:
    lines = []
    for offset, raw in enumerate(httpkit.split_lines(body)):
        m = STAMP.match(raw)
        text = raw[m.end() :] if m else raw
        lines.append(Line(first_line + offset, text.rstrip(), m.group(1) if m else None))
    return lines


def second(stamp: object) -> str | None:
    """An API timestamp (``2026-12-01T11:51:00Z``) as the log's ``YYYY-MM-DDTHH:MM:SS``."""
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).strftime("%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None


def step_lines(lines: list[Line], step: dict[str, Any] | None) -> list[Line]:
    """The log lines written while ``step`` ran (by the runner's timestamps)."""
    if step is None:
        return []
    start, end = second(step.get("started_at")), second(step.get("completed_at"))
    if start is None:
        return []
    return [ln for ln in lines if ln.at is not None and start <= ln.at <= (end or ln.at)]


def find_errors(lines: list[Line]) -> list[Line]:
    return [ln for ln in lines if ERROR.search(ln.text) and not NOT_ERRORS.search(ln.text)]


def excerpt(lines: list[Line], first: Line, before: int) -> str:
    index = next(i for i, ln in enumerate(lines) if ln.number == first.number)
    chosen = lines[max(index - before, 0) : index + EXCERPT_AFTER + 1][:EXCERPT_MAX]
    width = len(str(chosen[-1].number))
    return "\n".join(f"{ln.number:>{width}} | {httpkit.clip(ln.text, LINE_CHARS)}" for ln in chosen)


def analyse(job: dict[str, Any], body: str, first_line: int, before: int) -> dict[str, Any]:
    lines = parse_log(body, first_line)
    steps = [s for s in job.get("steps") or [] if isinstance(s, dict)]
    step = next((s for s in steps if s.get("conclusion") in FAILED), None)
    window = step_lines(lines, step)
    errors = find_errors(window) or find_errors(lines)
    telling = [ln for ln in errors if not GENERIC.search(ln.text)]
    first = (telling or errors or [None])[0]
    codes = [m.group(1) for ln in errors if (m := EXIT_CODE.search(ln.text))]
    url = job.get("html_url")
    if url and step is not None and window and first is not None:
        url = f"{url}#step:{step.get('number')}:{first.number - window[0].number + 1}"
    return {
        "job": job.get("name"),
        "job_id": job.get("id"),
        "conclusion": job.get("conclusion"),
        "step": {"number": step.get("number"), "name": step.get("name")} if step else None,
        "exit_code": int(codes[-1]) if codes else None,
        "first_error": (
            {"line": first.number, "text": httpkit.clip(first.text, LINE_CHARS)} if first else None
        ),
        "excerpt": excerpt(lines, first, before) if first else "",
        "errors": [
            {"line": ln.number, "text": httpkit.clip(ln.text, LINE_CHARS)} for ln in errors[:8]
        ],
        "log_url": url,
        "log_lines": len(lines),
    }


def pick_run(api: httpkit.Client, repo: str, args: dict[str, Any]) -> dict[str, Any] | None:
    if args.get("run_id") is not None:
        run_id = skillkit.positive_int(args, "run_id")
        return dict(api.get(f"/repos/{repo}/actions/runs/{run_id}"))
    params: dict[str, Any] = {"status": "failure", "per_page": 1}
    branch = args.get("branch")
    if branch is not None:
        if not isinstance(branch, str) or not BRANCH.match(branch) or ".." in branch:
            raise skillkit.Refused("'branch' must be a branch name")
        params["branch"] = branch
    runs = api.get(ghkit.runs_path(repo, args.get("workflow")), params).get("workflow_runs") or []
    return dict(runs[0]) if runs else None


def run_summary(run: dict[str, Any]) -> dict[str, Any]:
    item = ghkit.run_item(run)
    return {k: v for k, v in item.items() if k not in ("number", "created_at")}


def sentence(failed: list[dict[str, Any]], total: int) -> str:
    if not failed:
        return "no job failed"
    first = failed[0]
    where = f"'{first['job']}'"
    if first["step"]:
        where += f", step {first['step']['number']} '{first['step']['name']}'"
    said = first["first_error"]["text"] if first["first_error"] else "no error line found"
    return f"{len(failed)} of {total} jobs failed; first: {where}: {said}"


def triage(args: dict[str, Any]) -> dict[str, Any]:
    repo = ghkit.repo_of(args)
    max_jobs = args.get("max_jobs", 3)
    before = args.get("context_lines", 3)
    for key, value, top in (("max_jobs", max_jobs, MAX_JOBS), ("context_lines", before, 10)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
            raise skillkit.Refused(f"'{key}' must be an integer from 0 to {top}")
    api = ghkit.client()
    run = pick_run(api, repo, args)
    if run is None:
        where = f" on branch {args['branch']!r}" if args.get("branch") else ""
        return {"repo": repo, "run": None, "failed_jobs": [], "summary": f"no failed run{where}"}
    jobs = ghkit.latest_jobs(api, repo, run["id"])
    failed_jobs = [j for j in jobs if j.get("conclusion") in FAILED]
    results = []
    skipped = []
    started = time.monotonic()
    for job in failed_jobs[:max_jobs]:
        if time.monotonic() - started > TIME_BUDGET:
            skipped.append(job.get("name"))  # leave time to answer before the hard limit
            continue
        try:
            log = api.text(
                f"/repos/{repo}/actions/jobs/{job['id']}/logs", tail_bytes=LOG_TAIL_BYTES
            )
        except httpkit.HttpError as e:
            if e.status not in (404, 410):
                raise
            result = analyse(job, "", 1, before)  # logs expire (GitHub keeps them 90 days)
            result["log_error"] = str(e)
        else:
            result = analyse(job, log.body, log.first_line, before)
            result["log_truncated"] = log.truncated
        results.append(result)
    return {
        "repo": repo,
        "run": run_summary(run),
        "jobs_total": len(jobs),
        "jobs_failed": len(failed_jobs),
        "failed_jobs": results,
        "not_analysed": skipped,
        "summary": sentence(results, len(jobs)),
    }


def run(args: dict[str, Any]) -> dict[str, Any]:
    with httpkit.answer_shape("GitHub"):
        return triage(args)


if __name__ == "__main__":
    skillkit.main("ci-triage", run)
