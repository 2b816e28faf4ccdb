"""Workspace repositories on disk: where they are, one lock each, quotas, the NOG cache.

``<root>/<user dir>/<name>/`` is a git repository (``root`` defaults to
``<home>/workspaces``; the user dir is the user id when it is path-safe, else a hash).
Every git call on one workspace runs in a thread while its lock is held (:meth:`Repos.locked`),
so the event loop never blocks and two operations never interleave on one repository.

The lock is this process's :class:`asyncio.Lock`, then, when other processes share the
volume (replicas and workers on Postgres storage), the cross-process lock of
:mod:`nexflow.workspace.shared_lock`. Another process may then have committed since this
one last held the workspace: on taking the lock, the repository's :class:`Fingerprint`
(``main``, ``packed-refs``, the pack directory) is compared with the one this process
left at its last release, and what it keeps in memory about that workspace is dropped
when they differ: the NOG (rebuilt from ``main`` on its next use) and, when the packs
changed, the open repository's ``cat-file`` processes. Nothing else here outlives a
release (patch rows and shares are read from storage, file contents from git, every
time): docs/scale-out.md, "Workspaces on a shared volume".
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ParamSpec, TypeVar

import structlog

from nexflow.config.model import WorkspacesConfig
from nexflow.panels import PanelError, parse
from nexflow.panels.runtime.versions import PanelRecord
from nexflow.workspace.api import NotFound, QuotaExceeded, WorkspaceError
from nexflow.workspace.gitrepo import GitRepo, RefMoved
from nexflow.workspace.layout import PANELS_DIR, author_name, check_name, load_state, user_dir
from nexflow.workspace.nog import NexusObjectGraph, build_nog
from nexflow.workspace.shared_lock import LocalLocks, WorkspaceLocks

log = structlog.get_logger("nexflow.workspace")
P = ParamSpec("P")
T = TypeVar("T")
README = """# Nexflow workspace

This directory is a git repository kept by Nexflow (docs/workspaces.md).
`main` is what your panels show; AI changes arrive on `nexflow/patch/<id>` branches
and reach `main` only when you accept them. The checked-out files follow `main`:
change them through Nexflow (or commit your edits yourself), not by hand.

- `panels/<id>.nxml`, `panels/<id>.state.json`: each panel's definition and state
- `notes/`: notes; anything else: your files
"""
MAX_NOG_FILE = 200_000


def split_key(key: str) -> tuple[str, str]:
    user_id, _, name = key.rpartition("/")
    return user_id, name


async def in_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a git step off the loop; translate git's failures into :class:`WorkspaceError`."""
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except RefMoved as exc:
        raise WorkspaceError(
            "the workspace changed while this ran; nothing was changed", "try again"
        ) from exc
    except Exception as exc:
        from git.exc import GitCommandError  # loaded already: only a GitRepo raises it

        if not isinstance(exc, GitCommandError):
            raise
        log.error("git_failed", command=exc.command, status=exc.status, exc_info=True)
        raise WorkspaceError(
            "the workspace repository refused the operation; nothing was changed",
            "see the gateway log",
        ) from exc


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What a repository's refs and packs look like on disk, read without git (a few
    ``stat`` calls and one small read): equal fingerprints mean nobody moved ``main``,
    packed the refs or changed the packs in between."""

    main: str | None  # refs/heads/main as a loose ref; None when packed or missing
    packed_refs: tuple[int, int, int] | None  # (inode, size, mtime ns) of packed-refs
    packs: tuple[int, int, int] | None  # (inode, size, mtime ns) of objects/pack

    @classmethod
    def read(cls, path: Path) -> Fingerprint | None:
        """None when it cannot be read (a missing repository: nothing to be stale)."""
        git = path / ".git"
        try:
            main = (git / "refs" / "heads" / "main").read_text("ascii").strip()
        except FileNotFoundError:
            main = None
        except OSError:
            return None
        return cls(main, _stat(git / "packed-refs"), _stat(git / "objects" / "pack"))


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class Repos:
    """``locks``: the cross-process lock (:func:`~nexflow.workspace.shared_lock.workspace_locks`);
    the default, :class:`~nexflow.workspace.shared_lock.LocalLocks`, is for one process."""

    def __init__(
        self, config: WorkspacesConfig, root: Path, locks: WorkspaceLocks | None = None
    ) -> None:
        self.config = config
        self.root = root
        self.locks = locks or LocalLocks()
        self._open: dict[str, GitRepo] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._nogs: dict[str, NexusObjectGraph] = {}
        self._seen: dict[str, Fingerprint | None] = {}  # key -> as left at the last release

    def key(self, user_id: str, name: str | None = None) -> str:
        return f"{user_id}/{name or self.config.default_name}"

    def key_of(self, record: PanelRecord) -> str:
        """The workspace a panel belongs to: its owner's, the one chosen at creation."""
        return self.key(record.owner, record.workspace)

    def exists(self, key: str) -> bool:
        return (self.path(key) / ".git").exists()

    def path(self, key: str) -> Path:
        user_id, name = split_key(key)
        return self.root / user_dir(user_id) / name

    @asynccontextmanager
    async def locked(self, key: str) -> AsyncIterator[None]:
        """Hold workspace ``key`` against this process's other tasks and, when the volume
        is shared, against other processes; what this process remembers of it is checked
        against the disk first (see the module docstring)."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if not self.locks.shared:
                yield
                return
            async with self.locks.hold(key):
                await self._catch_up(key)
                try:
                    yield
                finally:
                    self._seen.pop(key, None)  # unknown until read: stale next time
                    self._seen[key] = await asyncio.to_thread(Fingerprint.read, self.path(key))

    async def _catch_up(self, key: str) -> None:
        """Drop what is stale about ``key`` when another process changed it on disk."""
        now = await asyncio.to_thread(Fingerprint.read, self.path(key))
        before = self._seen.get(key)
        if key in self._seen and now is not None and now == before:
            return
        stale_graph = self._nogs.pop(key, None) is not None
        repo = self._open.get(key)
        repacked = before is None or now is None or before.packs != now.packs
        if repo is not None and repacked:
            await asyncio.to_thread(repo.forget_objects)
        if stale_graph or (repo is not None and repacked):
            log.info("workspace_changed_elsewhere", workspace=key, repacked=repacked)

    def names(self, user_id: str) -> list[str]:
        base = self.root / user_dir(user_id)
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if (p / ".git").exists())

    def existing(self) -> Iterator[tuple[str, Path]]:
        """(user dir, path) of every repository on disk."""
        if not self.root.is_dir():
            return
        for user in sorted(self.root.iterdir()):
            if user.is_dir():
                for ws in sorted(user.iterdir()):
                    if (ws / ".git").exists():
                        yield user.name, ws

    async def repo(self, key: str, *, create: bool = True) -> GitRepo:
        """The open repository (the caller holds the lock); created on first use."""
        repo = self._open.get(key)
        if repo is not None:
            return repo
        path = self.path(key)
        user_id, name = split_key(key)
        if (path / ".git").exists():
            repo = await in_thread(GitRepo, path, timeout_s=self.config.git_timeout_s)
        elif not create:
            raise NotFound(f"{user_id} has no workspace {name!r}")
        else:
            check_name(name)
            have = self.names(user_id)
            if len(have) >= self.config.max_workspaces:
                raise QuotaExceeded(
                    f"{user_id} already has {len(have)} workspaces, the most allowed "
                    f"(workspaces.max_workspaces = {self.config.max_workspaces})",
                    "delete a workspace directory or raise the quota",
                )
            repo = await in_thread(
                GitRepo.create,
                path,
                {"README.md": README},
                "Create workspace",
                author_name(user_id),
                timeout_s=self.config.git_timeout_s,
            )
            log.info("workspace_created", workspace=key, path=str(path))
        self._open[key] = repo
        return repo

    def close(self) -> None:
        for repo in self._open.values():
            repo.close()
        self._open.clear()
        self._nogs.clear()
        self._seen.clear()

    async def aclose(self) -> None:
        """:meth:`close`, and the cross-process lock's idle connections."""
        self.close()
        await self.locks.close()

    # -- the NOG ------------------------------------------------------------------

    def loaded_nog(self, key: str) -> NexusObjectGraph | None:
        return self._nogs.get(key)

    async def nog(self, key: str, repo: GitRepo) -> NexusObjectGraph:
        """The workspace's graph, built from main's files on first use (lock held)."""
        graph = self._nogs.get(key)
        if graph is None:
            graph = await asyncio.to_thread(_build, key, repo)
            self._nogs[key] = graph
        return graph


def _build(key: str, repo: GitRepo) -> NexusObjectGraph:
    head = repo.head()
    files: dict[str, str] = {}
    for path, size in (repo.files(head) if head else {}).items():
        if size > MAX_NOG_FILE or path == "README.md":
            continue
        try:
            files[path] = repo.read(head, path) or "" if head else ""
        except UnicodeDecodeError:
            continue
    panels = []
    for path in sorted(files):
        if path.startswith(f"{PANELS_DIR}/") and path.endswith(".nxml"):
            panel_id = path[len(PANELS_DIR) + 1 : -len(".nxml")]
            try:
                definition = parse(files[path])
            except PanelError:
                log.warning("nog_panel_skipped", workspace=key, panel=panel_id)
                continue
            state = load_state(files.get(f"{PANELS_DIR}/{panel_id}.state.json"))
            panels.append((panel_id, definition, state))
    others = {p: t for p, t in files.items() if not p.startswith(f"{PANELS_DIR}/")}
    return build_nog(key, panels, others)
