"""A user's own file edits and sharing.

``share(owner, name, other)`` gives the other user a branch ``share/<user>`` of the
workspace, made from main (seed: "share = same containers, new branch"); the invited user
reads and commits on that branch, never on the owner's main.
"""

from __future__ import annotations

import structlog

from nexflow.workspace import patching
from nexflow.workspace.api import CommitInfo, Forbidden, QuotaExceeded, Stale, WorkspaceError
from nexflow.workspace.gitrepo import ZERO, CommitMeta, GitRepo
from nexflow.workspace.layout import author_name, safe_path, user_dir
from nexflow.workspace.repos import Repos, in_thread
from nexflow.workspace.store import PatchStore

log = structlog.get_logger("nexflow.workspace")


def commit_info(meta: CommitMeta) -> CommitInfo:
    return CommitInfo(meta.sha, meta.message, meta.author, meta.at)


class WorkspaceFiles:
    def __init__(self, repos: Repos, store: PatchStore) -> None:
        self._repos = repos
        self._config = repos.config
        self._store = store

    def check_bytes(self, content: str) -> None:
        size = len(content.encode("utf-8"))
        if size > self._config.max_file_bytes:
            raise QuotaExceeded(
                f"the content is {size} bytes, more than one file may hold "
                f"(workspaces.max_file_bytes = {self._config.max_file_bytes})"
            )

    async def share(self, owner: str, name: str, other_user: str) -> str:
        """Give ``other_user`` a branch ``share/<user>`` of the workspace (from main)."""
        if other_user == owner:
            raise WorkspaceError("a workspace cannot be shared with its owner")
        key = self._repos.key(owner, name)
        branch = f"share/{user_dir(other_user)}"
        async with self._repos.locked(key):
            repo = await self._repos.repo(key, create=name == self._config.default_name)
            if await in_thread(repo.head, f"refs/heads/{branch}") is None:
                main = await in_thread(repo.head)
                await in_thread(repo.update_ref, f"refs/heads/{branch}", main or ZERO, ZERO)
            await self._store.add_share(key, other_user, branch)
        log.info("workspace_shared", workspace=key, user=other_user, branch=branch)
        return branch

    async def shared_with(self, user_id: str) -> list[tuple[str, str]]:
        """(workspace, branch) of every workspace shared with ``user_id``."""
        return [(ws, branch) for ws, _, branch in await self._store.shares(user_id=user_id)]

    async def read_file(
        self, user_id: str, path: str, *, owner: str | None = None, name: str | None = None
    ) -> str | None:
        key, ref = await self._file_ref(user_id, owner, name)
        clean = safe_path(path)
        async with self._repos.locked(key):
            repo = await self._repos.repo(key, create=owner is None)
            return await in_thread(repo.read, ref, clean)

    async def write_file(
        self,
        user_id: str,
        path: str,
        text: str | None,
        *,
        owner: str | None = None,
        name: str | None = None,
        message: str | None = None,
        base: str | None = None,
    ) -> CommitInfo:
        """A user's own edit: committed on main of their workspace, or on their
        ``share/<user>`` branch of a workspace shared with them. ``text`` None deletes
        the file.

        ``base``: the commit the editor read the file at; :class:`Stale` (nothing is
        written) when the file's text there differs from its text now, so a save never
        silently overwrites an edit made meanwhile (GraphStudio's editors send it)."""
        key, ref = await self._file_ref(user_id, owner, name)
        clean = safe_path(path)
        if text is not None:
            self.check_bytes(text)
        message = message or f"Edit {clean} by {user_id}"
        async with self._repos.locked(key):
            repo = await self._repos.repo(key, create=owner is None)
            if base is not None:
                await in_thread(self._check_base, repo, ref, clean, base)
            if ref == "refs/heads/main":
                sha = await in_thread(
                    patching.commit_main,
                    repo,
                    {clean: text},
                    message,
                    author_name(user_id),
                    self._config.max_bytes,
                    allow_empty=True,
                )
                graph = self._repos.loaded_nog(key)
                if graph is not None and text is not None:
                    graph.update_file(clean, text)
                elif graph is not None:
                    graph.remove(clean)
            else:
                sha = await in_thread(self._commit_branch, repo, ref, clean, text, message, user_id)
            return commit_info(await in_thread(repo.meta, sha or ref))

    @staticmethod
    def _check_base(repo: GitRepo, ref: str, path: str, base: str) -> None:
        head = repo.head(ref)
        full = repo.head(base) if len(base) >= 4 else None
        if full is None or head is None or not repo.is_ancestor(full, head):
            raise Stale(f"{base[:40]!r} is not a commit of this workspace's history")
        if repo.read_bytes(full, path) != repo.read_bytes(head, path):
            raise Stale(
                f"{path} changed since {full[:10]} (the version this edit was made on)",
                "reload the file, then make the edit again",
            )

    async def locate(
        self, user_id: str, owner: str | None = None, name: str | None = None
    ) -> tuple[str, str]:
        """(workspace key, branch ref) a user reads and edits: main of their own
        workspace, or their share branch of ``owner``'s; :class:`Forbidden` otherwise."""
        return await self._file_ref(user_id, owner, name)

    def _commit_branch(
        self, repo: GitRepo, ref: str, path: str, text: str | None, message: str, user_id: str
    ) -> str:
        head = repo.head(ref)
        patching.check_size(repo, head, {path: text}, self._config.max_bytes)
        sha = repo.commit(head, {path: text}, message, author_name(user_id))
        repo.update_ref(ref, sha, head or ZERO)
        return sha

    async def _file_ref(self, user_id: str, owner: str | None, name: str | None) -> tuple[str, str]:
        if owner is None or owner == user_id:
            return self._repos.key(user_id, name), "refs/heads/main"
        key = self._repos.key(owner, name)
        for ws, _, branch in await self._store.shares(user_id=user_id):
            if ws == key:
                return key, f"refs/heads/{branch}"
        raise Forbidden(f"workspace {key} is not shared with {user_id}")
