"""The GitHub pieces the github and ci-triage skills share (standard library only).

* :func:`client`, an :class:`httpkit.Client` for the REST API with the admin-granted
  ``GITHUB_TOKEN`` and ``GITHUB_API_URL`` (``https://api.github.com`` when not granted);
* :func:`repo_of` reads and checks ``"owner/name"``;
* :func:`runs_path` is where the workflow runs of a repository (or of one workflow) are
  listed; :func:`latest_jobs` the latest attempt's jobs of a run; :func:`run_item` a run
  in the compact shape both skills answer with.
"""

from __future__ import annotations

import re
from typing import Any

import httpkit
import skillkit

REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


def client() -> httpkit.Client:
    return httpkit.Client(
        httpkit.base_url("GITHUB_API_URL", "https://api.github.com"),
        service="GitHub",
        headers={
            "Authorization": "Bearer " + skillkit.env("GITHUB_TOKEN"),
            "X-GitHub-Api-Version": "2022-11-28",
        },
    )


def repo_of(args: dict[str, Any]) -> str:
    repo = args.get("repo")
    if not isinstance(repo, str) or not REPO.match(repo) or ".." in repo:
        raise skillkit.Refused("'repo' must be 'owner/name', e.g. 'octo-org/demo'")
    return repo


def runs_path(repo: str, workflow: object) -> str:
    """The workflow runs of ``repo``, or of one workflow (its file name or id) in it."""
    if workflow is None:
        return f"/repos/{repo}/actions/runs"
    if isinstance(workflow, bool) or not isinstance(workflow, str | int):
        raise skillkit.Refused("'workflow' must be a workflow file name or id")
    return f"/repos/{repo}/actions/workflows/{httpkit.segment(workflow)}/runs"


def latest_jobs(api: httpkit.Client, repo: str, run_id: object) -> list[dict[str, Any]]:
    """The jobs of the run's latest attempt."""
    found = api.get(
        f"/repos/{repo}/actions/runs/{run_id}/jobs", {"filter": "latest", "per_page": 100}
    )
    return [j for j in found.get("jobs") or [] if isinstance(j, dict)]


def run_item(run: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": run.get("id"),
        "name": run.get("name"),
        "title": httpkit.clip(run.get("display_title"), 200) or None,
        "branch": run.get("head_branch"),
        "sha": (run.get("head_sha") or "")[:12] or None,
        "event": run.get("event"),
        "status": run.get("status"),
        "conclusion": run.get("conclusion"),
        "number": run.get("run_number"),
        "attempt": run.get("run_attempt"),
        "created_at": run.get("created_at"),
        "url": run.get("html_url"),
    }
