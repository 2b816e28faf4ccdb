"""When to pack a workspace repository: a count of commits per repository.

Every commit Nexflow writes leaves its new objects loose, one file each under
``.git/objects`` (a mirror commit: the changed files, the trees on their paths, the
commit; ~4). 1,000 mirror commits left 4,010 files, 16 MB on disk, which one pack holds
in 0.5 MB. :meth:`GitRepo.maintain <nexflow.workspace.gitrepo.GitRepo.maintain>` counts
the loose objects and runs ``git gc`` past ``loose_limit`` (a few milliseconds when there
is nothing to do); this policy says when to call it. Details: docs/workspaces.md, "Git
timeouts and maintenance".

Use (one policy per service; after a commit, still under the workspace lock)::

    policy = MaintenancePolicy.from_config(config)  # config: WorkspacesConfig
    ...
    if policy.note_commit(key):
        done = await in_thread(repo.maintain, loose_limit=policy.loose_limit)
        log.info("workspace_gc", workspace=key, ran=done.ran, seconds=done.seconds)

- :meth:`MaintenancePolicy.note_commit` is True on the first commit the policy sees for
  a repository (a gateway that restarts often still gets its repositories looked at),
  then on every ``every_commits``-th (``workspaces.gc_every_commits``; 0: never).
- ``maintain`` raises what any git step raises (``GitTimeout`` past
  ``workspaces.git_timeout_s``, ``GitCommandError``; ``in_thread`` makes them a
  ``WorkspaceError``): log it and go on. Nothing is lost, the objects stay loose and the
  next trigger tries again.
- Counts live in the policy object, in memory: no global state, nothing to persist.
  ``forget(key)`` when a repository is closed or deleted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nexflow.workspace.gitrepo import DEFAULT_LOOSE_LIMIT

if TYPE_CHECKING:
    from nexflow.config.model import WorkspacesConfig


class MaintenancePolicy:
    """Counts commits per repository key and says when to run ``GitRepo.maintain``."""

    def __init__(self, every_commits: int, loose_limit: int = DEFAULT_LOOSE_LIMIT) -> None:
        if every_commits < 0:
            raise ValueError("every_commits must be 0 (never) or more")
        self.every_commits = every_commits
        self.loose_limit = loose_limit  # passed on to GitRepo.maintain
        self._since: dict[str, int] = {}  # key -> commits since it last said True

    @classmethod
    def from_config(cls, config: WorkspacesConfig) -> MaintenancePolicy:
        return cls(config.gc_every_commits, config.gc_loose_objects)

    def note_commit(self, key: str, commits: int = 1) -> bool:
        """Note ``commits`` new commits to ``key``; True when it is time to maintain it."""
        if not self.every_commits:
            return False
        since = self._since.get(key)
        if since is not None and since + commits < self.every_commits:
            self._since[key] = since + commits
            return False
        self._since[key] = 0
        return True

    def forget(self, key: str) -> None:
        self._since.pop(key, None)
