"""The panel mirror: committed panel changes become commits on main, in the background.

:class:`PanelMirror` is the panel service's
:class:`~nexflow.panels.runtime.service.PanelObserver`. Its hooks never touch git: they
note "panel X of owner U changed, by whom, what" in a :class:`~.pending.Pending` per
workspace (the one the panel belongs to) and wake one background worker, so a button
press or a tool call returns as soon as the panel store has it. The worker (started
after the start-up catch-up, :mod:`~nexflow.workspace.startup`, and stopped by
:class:`~nexflow.workspace.service.WorkspaceService`) commits each dirty workspace as
**one** commit holding the *current* files of its dirty panels, read from the panel
service (the runtime truth) when it commits; changes noted while it works wait for the
next round, so a burst of presses becomes one or a few commits whose message lists every
change and who made it. Memory stays bounded however far git falls behind (one entry per
dirty panel, a bounded list of change lines).

Host feeds are not noted (a server-monitor would commit every few seconds); their values
ride along with the panel's next commit. Patches and restores write git first and are
skipped here. Operations that read or move main (propose, accept, reject, history,
restore, sync, the NOG) call :meth:`PanelMirror.flush_locked` first, so a patch's base
holds the latest panel state. A mirror failure never fails the panel change: it is
logged, the panels stay dirty and go with the next round; ``stop()`` flushes everything
and ``start()`` commits whatever the store has that main does not (:meth:`catch_up`),
which is also what repairs main after a crash that lost pending work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from nexflow.panels.runtime import PanelService
from nexflow.panels.runtime.errors import PanelNotFound, PanelRuntimeError
from nexflow.panels.runtime.versions import Change, PanelRecord
from nexflow.workspace import patching
from nexflow.workspace.api import QuotaExceeded, WorkspaceError
from nexflow.workspace.gitrepo import GitRepo
from nexflow.workspace.layout import author_name, dump_state, panel_files, panel_of
from nexflow.workspace.maintenance import MaintenancePolicy
from nexflow.workspace.nog import NexusObjectGraph
from nexflow.workspace.pending import Note, Pending
from nexflow.workspace.repos import Repos, in_thread

log = structlog.get_logger("nexflow.workspace")


class PanelQuotaExceeded(QuotaExceeded, PanelRuntimeError):
    """Refuses a new panel; a panel-runtime error too, so panel surfaces report it."""


class PanelWorkspaceRefused(WorkspaceError, PanelRuntimeError):
    """The workspace a new panel asked for cannot be created (a bad name, git failed)."""


def clip(value: Any, n: int = 300) -> Any:
    text = str(value)
    return value if len(text) <= n else text[: n - 1] + "…"


def describe(record: PanelRecord, change: Change) -> Note:
    """The note a committed change leaves (its line is the commit message it gets alone)."""
    who = change.user_id or record.owner
    actor = f"the AI for {who}" if change.triggered_by == "ai" else who
    if change.kind == "create":
        label, line = "create", f"Create panel {record.id} from {record.template} by {who}"
    elif change.kind == "rollback":
        to = (change.args or {}).get("to_version")
        label, line = "roll back", f"Roll back panel {record.id} to version {to} by {who}"
    else:
        label = change.tool or change.kind
        args = ", ".join(
            f"{k}={clip(v, 40)!r}" for k, v in (change.args or {}).items() if v is not None
        )
        line = f"{record.id}: {label}({args}) by {actor}"
    return Note(record.id, label, line, actor, author_name(who))


class PanelMirror:
    def __init__(self, repos: Repos, panels: PanelService) -> None:
        self._repos = repos
        self._config = repos.config
        self._panels = panels
        self._maintenance = MaintenancePolicy.from_config(repos.config)
        self._dirty: dict[str, Pending] = {}  # workspace key -> what waits
        self._committing: set[str] = set()  # workspace keys whose commit is under way
        self._wake = asyncio.Event()
        self._running = asyncio.Event()  # cleared by pause()
        self._running.set()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    # -- the worker ---------------------------------------------------------------

    def start(self) -> None:
        if self._task is not None:
            return
        self._closing = False
        self._task = asyncio.create_task(self._run(), name="workspace-mirror")
        if self._dirty:
            self._wake.set()

    async def stop(self, *, flush: bool = True) -> None:
        """Commit everything pending, then end the worker. ``flush=False`` drops the
        pending work instead, as a crash would (the next ``start()`` catches up)."""
        task, self._task = self._task, None
        if task is None:
            return
        if not flush:
            self._dirty.clear()
        self._closing = True
        self._running.set()
        self._wake.set()
        await task

    def pause(self) -> None:
        """Hold the worker before its next round (tests use it to show a press does not
        wait for git). :meth:`flush`, :meth:`flush_locked` and :meth:`stop` still work."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def pending(self) -> int:
        """Changes noted and not committed yet."""
        return sum(p.count for p in self._dirty.values())

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            await self._running.wait()
            self._wake.clear()
            for key in list(self._dirty):
                try:
                    await self.flush(key)
                except Exception:  # a bug: keep the worker; start() catches up
                    log.exception("workspace_mirror_crashed", workspace=key)
            # Anything noted during the round set _wake again: one more round.
            if self._closing and not self._wake.is_set():
                return

    async def flush(self, key: str | None = None) -> None:
        """Commit what is pending in ``key`` (every workspace when None) now; a commit the
        worker has under way is waited for (its workspace lock), so everything noted
        before the call is on main when it returns."""
        keys = [key] if key is not None else [*self._dirty, *self._committing]
        for k in dict.fromkeys(keys):
            if k not in self._dirty and k not in self._committing:
                continue
            try:
                async with self._repos.locked(k):
                    repo = await self._repos.repo(k)
                    await self.flush_locked(k, repo)
            except (WorkspaceError, OSError) as exc:  # opening or creating the repo
                log.error("workspace_mirror_failed", workspace=k, error=str(exc), exc_info=True)

    async def flush_locked(self, key: str, repo: GitRepo) -> None:
        """Commit what is pending in ``key``; the caller holds its lock. Never raises a
        git failure: it is logged and the panels stay pending."""
        pending = self._dirty.pop(key, None)
        if pending is None:
            return
        self._committing.add(key)
        try:
            await self._commit(key, repo, pending)
        except (WorkspaceError, OSError) as exc:
            self._keep(key, pending)
            log.error("workspace_mirror_failed", workspace=key, error=str(exc), exc_info=True)
        except BaseException:
            self._keep(key, pending)
            raise
        finally:
            self._committing.discard(key)

    def _keep(self, key: str, pending: Pending) -> None:
        """Put back what failed, before what was noted since (no wake-up: it goes with
        the next change, or the next start)."""
        newer = self._dirty.pop(key, None)
        if newer is not None:
            pending.merge(newer)
        self._dirty[key] = pending

    async def _commit(self, key: str, repo: GitRepo, pending: Pending) -> None:
        files: dict[str, str | None] = {}
        records: dict[str, PanelRecord | None] = {}
        for panel_id in pending.panels:
            try:
                record: PanelRecord | None = self._panels.get(panel_id)
            except PanelNotFound:
                record = None
            if record is not None and self._repos.key_of(record) != key:
                record = None  # deleted, and the id reused by someone else or elsewhere
            nxml_path, state_path = panel_files(panel_id)
            if record is None:
                files[nxml_path] = files[state_path] = None
            else:
                files[nxml_path], files[state_path] = record.nxml, dump_state(record.state)
            records[panel_id] = record
        await in_thread(
            patching.commit_main,
            repo,
            files,
            pending.message(),
            pending.author(author_name(pending.owner)),
            self._config.max_bytes,
        )
        if self._maintenance.note_commit(key):
            await self._maintain(key, repo)
        graph = self._repos.loaded_nog(key)
        if graph is not None:
            for panel_id, maybe in records.items():
                if maybe is None:
                    graph.remove(panel_id)
                else:
                    self.refresh_graph(graph, maybe)

    async def _maintain(self, key: str, repo: GitRepo) -> None:
        """Pack the repository when it has piled up loose objects (under the workspace
        lock: that workspace's operations wait for it, ~0.5-1.5 s at 1,000 commits)."""
        try:
            done = await in_thread(repo.maintain, self._maintenance.loose_limit)
        except WorkspaceError as exc:  # a timeout or a git error: the commit stands
            log.warning("workspace_gc_failed", workspace=key, error=exc.message)
            return
        if done.ran:
            log.info(
                "workspace_gc",
                workspace=key,
                seconds=round(done.seconds, 3),
                loose_before=done.loose_before,
                loose_after=done.loose_after,
            )

    # -- the panel service's hooks ----------------------------------------------------

    def refresh_graph(self, graph: NexusObjectGraph, record: PanelRecord) -> None:
        try:
            definition = self._panels.definition(record.id)
        except PanelNotFound:  # deleted meanwhile
            graph.remove(record.id)
            return
        graph.update_panel(record.id, definition, record.state)

    async def before_create(self, owner: str, workspace: str) -> None:
        """Refuse a panel its workspace has no room for; create the workspace when it
        does not exist yet (within ``max_workspaces``), so the panel never belongs to a
        workspace that cannot exist. Opening an existing one is left to the worker."""
        key = self._repos.key(owner, workspace)
        have = sum(1 for r in self._panels.instances() if self._repos.key_of(r) == key)
        if have >= self._config.max_panels:
            raise PanelQuotaExceeded(
                f"{owner} already has {have} panels in workspace {workspace!r}, the most a "
                f"workspace holds (workspaces.max_panels = {self._config.max_panels})",
                "delete a panel first, or put this one in another workspace",
            )
        if self._repos.exists(key):
            return
        try:
            async with self._repos.locked(key):
                await self._repos.repo(key)
        except QuotaExceeded as exc:
            raise PanelQuotaExceeded(exc.message, exc.hint) from exc
        except WorkspaceError as exc:
            raise PanelWorkspaceRefused(exc.message, exc.hint) from exc
        except OSError as exc:
            log.error("workspace_create_failed", workspace=key, exc_info=True)
            raise PanelWorkspaceRefused(
                f"workspace {workspace!r} could not be created", "see the gateway log"
            ) from exc

    async def committed(self, record: PanelRecord, change: Change) -> None:
        # Host feeds would make a commit every few seconds; their values ride along with
        # the next real commit. Patches and restores write git themselves, first.
        if change.kind in ("feed", "patch", "restore"):
            return
        self._note(record, describe(record, change))

    async def deleted(self, record: PanelRecord) -> None:
        who = record.owner
        line = f"Delete panel {record.id}"
        self._note(record, Note(record.id, "delete", line, who, author_name(who)))

    def _note(self, record: PanelRecord, note: Note) -> None:
        key = self._repos.key_of(record)
        pending = self._dirty.get(key)
        if pending is None:
            pending = self._dirty[key] = Pending(record.owner)
        pending.add(note)
        self._wake.set()

    # -- catching up with the panel store ------------------------------------------

    async def catch_up(self, owner: str, name: str | None = None, *, create: bool = True) -> None:
        """Make main of ``owner``'s workspace ``name`` (the default one when None) show
        the store's panels that belong to it: commit the ones it lacks or shows
        otherwise, delete the files of panels it should not have (deleted, or from
        before they could live elsewhere). What is pending for the workspace (presses
        during start-up) is committed first, under its own message; the catch-up then
        holds only what nothing noted."""
        key = self._repos.key(owner, name)
        try:
            async with self._repos.locked(key):
                repo = await self._repos.repo(key, create=create)
                await self.flush_locked(key, repo)
                records = [r for r in self._panels.instances() if self._repos.key_of(r) == key]
                await self.catch_up_locked(key, repo, records, prune=True)
        except (WorkspaceError, OSError) as exc:
            log.error("workspace_mirror_failed", workspace=key, error=str(exc), exc_info=True)

    async def catch_up_locked(
        self, key: str, repo: GitRepo, records: Sequence[PanelRecord], *, prune: bool = False
    ) -> None:
        """Commit ``records`` where main differs (host feed values, a lost mirror);
        ``prune`` also deletes the files of every other panel on main."""
        wanted = {r.id: (r.nxml, dump_state(r.state)) for r in records}
        files = await in_thread(_stale_files, repo, wanted, prune)
        if not files:
            return
        written = sorted({p for path, t in files.items() if t is not None if (p := panel_of(path))})
        gone = sorted({p for path, t in files.items() if t is None if (p := panel_of(path))})
        parts = [f"Mirror panel(s) {', '.join(written)} from the runtime"] if written else []
        if gone:
            parts.append(f"delete panel(s) {', '.join(gone)} the runtime no longer has")
        message = "; ".join(parts)
        message = message[0].upper() + message[1:]
        await in_thread(
            patching.commit_main, repo, files, message, "nexflow", self._config.max_bytes
        )
        graph = self._repos.loaded_nog(key)
        if graph is not None:
            for r in records:
                self.refresh_graph(graph, r)
            for panel_id in gone:
                graph.remove(panel_id)


def _stale_files(
    repo: GitRepo, wanted: Mapping[str, tuple[str, str]], prune: bool
) -> dict[str, str | None]:
    """The panel files main lacks or shows otherwise (blocking)."""
    head = repo.head()
    files: dict[str, str | None] = {}
    for panel_id, texts in wanted.items():
        for path, text in zip(panel_files(panel_id), texts, strict=True):
            if head is None or repo.read(head, path) != text:
                files[path] = text
    if prune and head is not None:
        for path in repo.files(head):
            owner_of = panel_of(path)
            if owner_of is not None and owner_of not in wanted:
                files[path] = None
    return files
