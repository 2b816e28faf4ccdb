"""Browsing a workspace's files as GraphStudio's file browser and editors do.

The tree at the head of the branch a user works on (main of their own workspace, or
their ``share/<user>`` branch of one shared with them), one file's text with the commit
that last changed it, its history, and bringing one file back to an older version as a
new commit. Edits go through :meth:`WorkspaceFiles.write_file` (quotas, safe paths,
share branches, the ``base`` check). Panel files (``panels/*``) are listed and readable
but never written here: a panel changes through its tools or a patch, which keep its
state valid (``docs/graphstudio/files.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from nexflow.workspace.api import CommitInfo, NotFound, WorkspaceError
from nexflow.workspace.files import WorkspaceFiles, commit_info
from nexflow.workspace.gitrepo import MAIN, GitRepo
from nexflow.workspace.layout import PANELS_DIR, check_name, safe_path
from nexflow.workspace.mirror import PanelMirror
from nexflow.workspace.repos import Repos, in_thread

Kind = Literal["file", "dir"]
LANGUAGES = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".tsx": "typescript",
    ".json": "json",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".css": "css",
}
_SNIFF = 8192  # bytes looked at for a NUL, as git does to call a file binary


class BadPath(WorkspaceError):
    code = "invalid_path"  # -> 422: outside the workspace, absolute, or git's own files


class PanelFile(WorkspaceError):
    code = "panel_file"  # -> 422: panels/* is written by the panel's tools and patches


class Binary(WorkspaceError):
    code = "binary"  # -> 415: not UTF-8 text


class TooLarge(WorkspaceError):
    code = "too_large"  # -> 413: larger than workspaces.max_file_bytes


def language_of(path: str) -> str:
    """The editor language for a path, from its extension; ``text`` when unknown."""
    return LANGUAGES.get(PurePosixPath(path).suffix.lower(), "text")


def browse_path(raw: str) -> str:
    """A path the browser may read: :func:`safe_path`'s rules, panel files allowed."""
    head, sep, rest = raw.partition("/")
    if head == PANELS_DIR and sep and rest:
        return f"{PANELS_DIR}/{_checked(rest)}"
    return edit_path(raw)


def edit_path(raw: str) -> str:
    """A path a user may write; :class:`PanelFile` for ``panels/*``."""
    parts = [p for p in PurePosixPath(raw).parts if p != "."] if raw else []
    if parts and parts[0] == PANELS_DIR and not raw.startswith("/"):
        raise PanelFile(
            f"{raw[:80]} is a panel's file: a panel changes through its tools or a patch "
            "(which keep its state valid), not by editing the file",
            "open the panel in the workspace, or ask the assistant to change it",
        )
    return _checked(raw)


def _checked(raw: str) -> str:
    try:
        return safe_path(raw)
    except WorkspaceError as exc:
        raise BadPath(exc.message, exc.hint) from exc


@dataclass(frozen=True, slots=True)
class Entry:
    path: str
    kind: Kind
    size: int


@dataclass(frozen=True, slots=True)
class FileText:
    path: str
    content: str
    sha: str  # the last commit that changed the file (its base for the next edit)
    language: str


class FileBrowser:
    def __init__(self, repos: Repos, files: WorkspaceFiles, mirror: PanelMirror) -> None:
        self._repos = repos
        self._files = files
        self._mirror = mirror
        self._config = repos.config

    async def _open(self, user_id: str, owner: str | None, name: str) -> tuple[str, str, GitRepo]:
        """(key, ref, repo) with the workspace lock NOT held; a named workspace of the
        caller must exist (the default one is created), another user's answers
        :class:`NotFound` unless it is shared with the caller."""
        try:
            check_name(name)  # never a path: ".." must not reach the disk
            key, ref = await self._files.locate(user_id, owner, name)
        except WorkspaceError as exc:  # a bad name, or not shared: like a missing one
            raise NotFound(f"no workspace {name[:40]!r}") from exc
        async with self._repos.locked(key):
            create = ref == MAIN and name == self._config.default_name
            repo = await self._repos.repo(key, create=create)
        return key, ref, repo

    async def tree(self, user_id: str, name: str, owner: str | None = None) -> list[Entry]:
        key, ref, repo = await self._open(user_id, owner, name)
        async with self._repos.locked(key):
            if ref == MAIN:
                await self._mirror.flush_locked(key, repo)
            head = await in_thread(repo.head, ref)
            rows = await in_thread(repo.entries, head) if head else []
        return [Entry(p, k, s) for p, k, s in rows]

    async def read(self, user_id: str, name: str, path: str, owner: str | None = None) -> FileText:
        clean = browse_path(path)
        key, ref, repo = await self._open(user_id, owner, name)
        async with self._repos.locked(key):
            if ref == MAIN and clean.startswith(f"{PANELS_DIR}/"):
                await self._mirror.flush_locked(key, repo)
            head = await in_thread(repo.head, ref)
            sizes = await in_thread(repo.sizes, head, [clean]) if head else {}
            if clean not in sizes:
                raise NotFound(f"{clean} is not a file of workspace {name!r}")
            if sizes[clean] > self._config.max_file_bytes:
                raise TooLarge(
                    f"{clean} is {sizes[clean]} bytes, more than the editor opens "
                    f"(workspaces.max_file_bytes = {self._config.max_file_bytes})"
                )
            assert head is not None
            data = await in_thread(repo.read_bytes, head, clean) or b""
            last = await in_thread(repo.log, ref, [clean], 1)
        if b"\0" in data[:_SNIFF]:
            raise Binary(f"{clean} is a binary file; the editor opens text only")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Binary(f"{clean} is not UTF-8 text; the editor opens text only") from exc
        sha = last[0].sha if last else head
        return FileText(clean, text, sha, language_of(clean))

    async def write(
        self,
        user_id: str,
        name: str,
        path: str,
        text: str,
        *,
        owner: str | None = None,
        message: str | None = None,
        base: str | None = None,
    ) -> CommitInfo:
        clean = edit_path(path)
        await self._open(user_id, owner, name)  # exists and is the caller's (or shared)
        return await self._files.write_file(
            user_id,
            clean,
            text,
            owner=owner,
            name=name,
            message=message or f"Edit {clean}",  # the author is the user
            base=base,
        )

    async def delete(
        self,
        user_id: str,
        name: str,
        path: str,
        *,
        owner: str | None = None,
        base: str | None = None,
    ) -> CommitInfo:
        """Remove the file in a new commit (its history keeps every version)."""
        clean = edit_path(path)
        key, ref, repo = await self._open(user_id, owner, name)
        async with self._repos.locked(key):
            head = await in_thread(repo.head, ref)
            found = await in_thread(repo.sizes, head, [clean]) if head else {}
        if clean not in found:
            raise NotFound(f"{clean} is not a file of workspace {name!r}")
        return await self._files.write_file(
            user_id, clean, None, owner=owner, name=name, message=f"Delete {clean}", base=base
        )

    async def history(
        self, user_id: str, name: str, path: str, owner: str | None = None, limit: int = 50
    ) -> list[CommitInfo]:
        """Commits of the branch's first-parent line that changed ``path``, newest first."""
        clean = browse_path(path)
        key, ref, repo = await self._open(user_id, owner, name)
        async with self._repos.locked(key):
            if ref == MAIN and clean.startswith(f"{PANELS_DIR}/"):
                await self._mirror.flush_locked(key, repo)
            metas = await in_thread(repo.log, ref, [clean], limit)
        return [commit_info(m) for m in metas]

    async def restore(
        self, user_id: str, name: str, path: str, sha: str, owner: str | None = None
    ) -> CommitInfo:
        """The file as it was at ``sha`` (a commit of the branch's history), committed
        as a new commit; history is never rewritten."""
        clean = edit_path(path)
        key, ref, repo = await self._open(user_id, owner, name)
        async with self._repos.locked(key):
            full = await in_thread(repo.head, sha) if len(sha) >= 4 else None
            head = await in_thread(repo.head, ref)
            if full is None or head is None or not await in_thread(repo.is_ancestor, full, head):
                raise NotFound(f"{sha[:40]!r} is not a commit in the history of {name!r}")
            data = await in_thread(repo.read_bytes, full, clean)
        if data is None:
            raise NotFound(f"{clean} did not exist at {full[:10]}")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Binary(f"{clean} was not UTF-8 text at {full[:10]}") from exc
        return await self._files.write_file(
            user_id,
            clean,
            text,
            owner=owner,
            name=name,
            message=f"Restore {clean} to {full[:10]}",
        )
