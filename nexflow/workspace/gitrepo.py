"""One workspace's git repository, driven through plumbing.

Commits are built in Python: the blobs, the trees on the changed paths and the commit
object are written straight to the loose object store (trees are read through GitPython's
persistent ``cat-file`` process), and published with a compare-and-swap ``update-ref``,
so making a patch or a merge never touches the work tree; only
:meth:`GitRepo.refresh_worktree` does, after ``main`` moved. A mirror commit starts two
git processes (``update-ref``, ``reset``) where a temporary index took eight. Every method
blocks: the service calls them through ``asyncio.to_thread`` under the workspace lock.
Git failures surface as :class:`git.GitCommandError` (the service translates them).

Nothing waits on git for ever (docs/workspaces.md, "Git timeouts and maintenance"): every
git process and object read gets ``timeout_s`` (``workspaces.git_timeout_s``), enforced by
:mod:`nexflow.workspace.gitproc`, which raises ``GitTimeout`` (a ``GitCommandError``).
:meth:`GitRepo.maintain` packs the loose objects (``git gc``) past a limit; when to
call it is :mod:`nexflow.workspace.maintenance`'s business.

The gateway does not import this module on start-up (``nexflow.workspace.lazy`` opens
the workspace layer on first use; a test checks ``import nexflow.app`` leaves ``git``
and ``gitdb`` out).
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeAlias

from nexflow.workspace.gitproc import GitTimeout, Watchdog, run_git

if TYPE_CHECKING:
    from git import Repo
    from gitdb.db import LooseObjectDB


MAIN = "refs/heads/main"
PATCH_PREFIX = "refs/heads/nexflow/patch/"
SHARE_PREFIX = "refs/heads/share/"
ZERO = "0" * 40
_COMMITTER = ("Nexflow", "nexflow@localhost")
_TREE, _FILE = 0o040000, 0o100644
_SHA = re.compile(r"[0-9a-f]{40}")
DEFAULT_TIMEOUT_S = 30.0  # workspaces.git_timeout_s
DEFAULT_LOOSE_LIMIT = 1_000  # workspaces.gc_loose_objects
_PACK_LIMIT = 50  # git's gc.autoPackLimit
# A path's change, nested by directory: text to write, None to delete, or a subtree.
_Edits: TypeAlias = dict[str, "str | _Edits | None"]


class RefMoved(Exception):
    """``update-ref`` found the ref somewhere else than expected (nothing was changed)."""


@dataclass(frozen=True, slots=True)
class CommitMeta:
    sha: str
    message: str
    author: str
    at: float
    parents: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Maintenance:
    """What :meth:`GitRepo.maintain` did."""

    ran: bool  # gc ran (there was enough to pack)
    seconds: float  # how long gc took; 0 when it did not run
    loose_before: int
    loose_after: int
    packs_before: int
    packs_after: int


def _ident(name: str, email: str, at: int) -> str:
    offset = time.localtime(at).tm_gmtoff
    sign, offset = ("-", -offset) if offset < 0 else ("+", offset)
    return f"{name} <{email}> {at} {sign}{offset // 3600:02d}{offset % 3600 // 60:02d}"


def _nest(files: Mapping[str, str | None]) -> _Edits:
    edits: _Edits = {}
    for path, text in files.items():
        *dirs, name = path.split("/")
        node = edits
        for d in dirs:
            sub = node.setdefault(d, {})
            if not isinstance(sub, dict):  # "a" written and "a/b" too: the subtree wins
                sub = node[d] = {}
            node = sub
        node[name] = text
    return edits


def _writes(edits: _Edits) -> bool:
    return any(isinstance(v, str) or (isinstance(v, dict) and _writes(v)) for v in edits.values())


class GitRepo:
    """``timeout_s`` bounds every git process and every object read (see the module)."""

    def __init__(self, path: Path, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        from git import Repo
        from gitdb.db import LooseObjectDB

        self.path = path
        self.timeout_s = timeout_s
        self._repo: Repo = Repo(path)
        self._git_dir = Path(self._repo.git_dir)
        self._loose: LooseObjectDB = LooseObjectDB(str(self._git_dir / "objects"))
        self._bytes: dict[str, int] = {}  # commit -> bytes of its files (see total_bytes)
        self._watchdog = Watchdog(self._repo.git, timeout_s)
        self._kept_loose = 0  # loose objects the last gc left (unreachable, not expired)

    @classmethod
    def create(
        cls,
        path: Path,
        files: Mapping[str, str],
        message: str,
        author: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> GitRepo:
        """A new repository whose ``main`` holds ``files`` (checked out)."""
        path.mkdir(parents=True, exist_ok=True)
        run_git(path, ("init", "--quiet", "--initial-branch=main"), timeout_s)
        repo = cls(path, timeout_s=timeout_s)
        writer = repo._repo.config_writer()
        writer.set_value("core", "autocrlf", "false")
        writer.set_value("commit", "gpgsign", "false")
        writer.release()
        sha = repo.commit(None, files, message, author)
        repo.update_ref(MAIN, sha, ZERO)
        repo.refresh_worktree()
        return repo

    def close(self) -> None:
        self._watchdog.close()
        self._repo.close()

    def forget_objects(self) -> None:
        """End the persistent ``cat-file`` processes (they restart on the next read):
        another process packed the objects they had open (its ``gc``)."""
        self._repo.git.clear_cache()

    def _run(
        self, *args: str, check: bool = True, strip: bool = True, timeout_s: float | None = None
    ) -> tuple[int, str]:
        return run_git(
            self.path,
            args,
            timeout_s or self.timeout_s,
            git_dir=self._git_dir,
            env=self._repo.git.environment(),
            check=check,
            strip=strip,
        )

    # -- reading ------------------------------------------------------------------

    def head(self, ref: str = MAIN) -> str | None:
        if ref.startswith("refs/heads/"):  # a branch: read the ref file, no process
            from git.refs.symbolic import SymbolicReference

            try:
                return SymbolicReference.dereference_recursive(self._repo, ref)
            except ValueError:
                return None
        status, out = self._run("rev-parse", "--verify", "-q", f"{ref}^{{commit}}", check=False)
        return out.strip() if status == 0 else None

    def tree_of(self, commit: str) -> str:
        if _SHA.fullmatch(commit):
            header = self._object(bytes.fromhex(commit)).split(b"\n", 1)[0]
            if header.startswith(b"tree "):
                return header[5:].decode("ascii")
        return self._run("rev-parse", f"{commit}^{{tree}}")[1]

    def read(self, commit: str, path: str) -> str | None:
        with self._watchdog.guard():
            try:
                blob = self._repo.commit(commit).tree / path
            except KeyError:
                return None
            data: bytes = blob.data_stream.read()
        return data.decode("utf-8")

    def files(self, commit: str) -> dict[str, int]:
        """Every file at ``commit`` with its size in bytes."""
        out = self._run("ls-tree", "-r", "-l", "-z", commit)[1]
        sizes: dict[str, int] = {}
        for entry in filter(None, out.split("\0")):
            meta, path = entry.split("\t", 1)
            size = meta.split()[3]
            sizes[path] = int(size) if size.isdigit() else 0
        return sizes

    def entries(self, commit: str) -> list[tuple[str, Literal["file", "dir"], int]]:
        """Every file and directory at ``commit``: ``(path, "file"|"dir", size)``, in
        git's order (a directory before what it holds); a directory's size is 0."""
        out = self._run("ls-tree", "-r", "-t", "-l", "-z", commit)[1]
        rows: list[tuple[str, Literal["file", "dir"], int]] = []
        for entry in filter(None, out.split("\0")):
            meta, path = entry.split("\t", 1)
            _, kind, _, size = meta.split()
            if kind == "tree":
                rows.append((path, "dir", 0))
            elif kind == "blob":
                rows.append((path, "file", int(size) if size.isdigit() else 0))
        return rows

    def read_bytes(self, commit: str, path: str) -> bytes | None:
        """A file's bytes at ``commit``; None when it is missing or not a file."""
        with self._watchdog.guard():
            try:
                blob = self._repo.commit(commit).tree / path
            except KeyError:
                return None
            if blob.type != "blob":
                return None
            data: bytes = blob.data_stream.read()
        return data

    def total_bytes(self, commit: str) -> int:
        """The size of every file at ``commit``; remembered for the commits this object
        made, so a run of mirror commits lists no tree."""
        total = self._bytes.get(commit)
        if total is None:
            total = self._bytes[commit] = sum(self.files(commit).values())
        return total

    def sizes(self, commit: str, paths: Sequence[str]) -> dict[str, int]:
        """Sizes of those of ``paths`` that are files at ``commit``."""
        out: dict[str, int] = {}
        with self._watchdog.guard():
            tree = self._repo.commit(commit).tree
            for path in paths:
                try:
                    item = tree / path
                except KeyError:
                    continue
                if item.type == "blob":
                    out[path] = int(item.size)
        return out

    def remember_bytes(self, commit: str, total: int) -> None:
        if len(self._bytes) > 64:
            self._bytes.clear()
        self._bytes[commit] = total

    def read_all(self, commit: str, prefix: str = "") -> dict[str, str]:
        return {p: self.read(commit, p) or "" for p in self.files(commit) if p.startswith(prefix)}

    def changed(self, old: str, new: str) -> list[str]:
        out = self._run("diff", "--name-only", "-z", "--no-renames", old, new)[1]
        return [p for p in out.split("\0") if p]

    def diff_text(self, old: str, new: str) -> str:
        return self._run("diff", "--no-color", "--no-renames", old, new)[1]

    def meta(self, commit: str) -> CommitMeta:
        with self._watchdog.guard():
            c = self._repo.commit(commit)
            message = c.message if isinstance(c.message, str) else c.message.decode()
            return CommitMeta(
                c.hexsha,
                message.strip(),
                str(c.author.name),
                float(c.authored_date),
                tuple(p.hexsha for p in c.parents),
            )

    def log(self, ref: str, paths: Sequence[str], limit: int) -> list[CommitMeta]:
        """Commits on ``ref``'s first-parent line that touched ``paths``, newest first."""
        out = self._run("log", "--first-parent", f"-n{limit}", "--format=%H", ref, "--", *paths)[1]
        return [self.meta(sha) for sha in out.split()]

    def is_ancestor(self, older: str, newer: str) -> bool:
        return self._run("merge-base", "--is-ancestor", older, newer, check=False)[0] == 0

    def refs(self, prefix: str) -> dict[str, str]:
        out = self._run("for-each-ref", "--format=%(refname) %(objectname)", prefix)[1]
        return dict(line.split(" ", 1) for line in out.splitlines() if line)

    def first_merge_of(self, commit: str, ref: str = MAIN) -> str | None:
        """The merge commit on ``ref``'s first-parent line whose second parent is ``commit``."""
        out = self._run("log", "--first-parent", "--merges", "--format=%H %P", ref)[1]
        for line in out.splitlines():
            sha, *parents = line.split()
            if commit in parents[1:]:
                return sha
        return None

    # -- writing ------------------------------------------------------------------

    def _object(self, binsha: bytes) -> bytes:
        with self._watchdog.guard():
            data: bytes = self._repo.odb.stream(binsha).read()
        return data

    def _store(self, kind: str, data: bytes) -> bytes:
        from gitdb import IStream

        stream = self._loose.store(IStream(kind, len(data), BytesIO(data)))
        binsha: bytes = stream.binsha
        return binsha

    def tree_with(self, base: str | None, files: Mapping[str, str | None]) -> str:
        """The tree of ``base`` (a commit, or nothing) with ``files`` written or deleted.

        Only the trees on the changed paths are rewritten; no index, no process."""
        with self._watchdog.guard():  # one deadline for every tree it reads
            root = bytes.fromhex(self.tree_of(base)) if base is not None else None
            tree = self._edit_tree(root, _nest(files))
        return (tree if tree is not None else self._store("tree", b"")).hex()

    def _edit_tree(self, tree: bytes | None, edits: _Edits) -> bytes | None:
        from git.objects.fun import tree_entries_from_data, tree_to_stream

        entries = {}
        if tree is not None:
            entries = {
                name: (mode, sha) for sha, mode, name in tree_entries_from_data(self._object(tree))
            }
        for name, edit in edits.items():
            old = entries.get(name)
            if isinstance(edit, dict):
                if old is not None and old[0] != _TREE and not _writes(edit):
                    continue  # deleting below a file: nothing there to delete
                sub = self._edit_tree(old[1] if old and old[0] == _TREE else None, edit)
                if sub is None:
                    entries.pop(name, None)
                else:
                    entries[name] = (_TREE, sub)
            elif edit is None:
                entries.pop(name, None)
            else:
                entries[name] = (_FILE, self._store("blob", edit.encode("utf-8")))
        if not entries:
            return None

        def order(name: str) -> bytes:  # git sorts a directory as if named "name/"
            return name.encode("utf-8") + (b"/" if entries[name][0] == _TREE else b"")

        out = BytesIO()
        tree_to_stream(
            [(entries[n][1], entries[n][0], n) for n in sorted(entries, key=order)], out.write
        )
        return self._store("tree", out.getvalue())

    def commit(
        self,
        parent: str | None,
        files: Mapping[str, str | None],
        message: str,
        author: str,
        *,
        extra_parents: Sequence[str] = (),
        tree: str | None = None,
    ) -> str:
        """A commit (not on any ref yet) of ``parent``'s tree with ``files`` applied."""
        tree = tree or self.tree_with(parent, files)
        at = int(time.time())
        lines = [f"tree {tree}", *(f"parent {p}" for p in (parent, *extra_parents) if p)]
        lines.append("author " + _ident(author, f"{author}@nexflow", at))
        lines.append("committer " + _ident(*_COMMITTER, at))
        body = "\n".join(lines) + "\n\n" + message.rstrip("\n") + "\n"
        return self._store("commit", body.encode("utf-8")).hex()

    def update_ref(self, ref: str, new: str, old: str) -> None:
        """Move ``ref`` to ``new`` only if it is at ``old`` (``ZERO``: must not exist).

        All or nothing, even when killed: git writes ``<ref>.lock``, checks ``old`` and
        renames the lock over the ref; killed before the rename, the ref is where it was
        (its reflog may already have the line) and the stale lock is removed."""
        from git.exc import GitCommandError

        try:
            self._run("update-ref", "-m", "nexflow", ref, new, old)
        except GitCommandError as exc:
            if isinstance(exc, GitTimeout):
                raise
            raise RefMoved(f"{ref} is not at {old[:12]} any more") from exc

    def delete_ref(self, ref: str) -> None:
        self._run("update-ref", "-d", ref)

    def refresh_worktree(self) -> None:
        """Make the checked-out files match ``main`` (the work tree is Nexflow's)."""
        self._run("reset", "--hard", "--quiet")

    def merge_text(self, base: str, ours: str, theirs: str) -> str | None:
        """Three-way merge of one text (``git merge-file``); None when the edits overlap."""
        with tempfile.TemporaryDirectory(prefix="nexflow-merge-") as tmp:
            paths = []
            for name, text in (("ours", ours), ("base", base), ("theirs", theirs)):
                path = Path(tmp) / name
                path.write_text(text, encoding="utf-8")
                paths.append(str(path))
            status, out = self._run("merge-file", "-p", "--quiet", *paths, check=False, strip=False)
            return out if status == 0 else None

    # -- maintenance --------------------------------------------------------------

    def objects(self) -> dict[str, int]:
        """``git count-objects -v``: ``count`` (loose objects), ``size`` (their KiB),
        ``in-pack``, ``packs``, ``size-pack`` (KiB), ``prune-packable``, ``garbage``."""
        out = self._run("count-objects", "-v")[1]
        return {k: int(v) for k, v in (line.split(": ", 1) for line in out.splitlines())}

    def maintain(
        self, loose_limit: int = DEFAULT_LOOSE_LIMIT, *, timeout_s: float | None = None
    ) -> Maintenance:
        """Pack the repository (``git gc``) once it has more than ``loose_limit`` new loose
        objects or more than 50 packs; otherwise only count them (a few ms).

        The count is exact (``count-objects``): ``gc --auto`` estimates it from one of
        the 256 object directories, which below a few thousand objects is a coin toss
        (and its default, 6,700, is ~1,700 mirror commits, 27 MB of files). gc runs in
        the foreground, under the timeout. What a ref (``main``, patch and share
        branches) or a reflog reaches is kept; unreachable objects (a rejected patch's
        commit) stay loose until ``gc.pruneExpire`` (two weeks) and are not counted as
        new again."""
        before = self.objects()
        fresh = before["count"] - self._kept_loose
        if fresh <= loose_limit and before["packs"] <= _PACK_LIMIT:
            n, packs = before["count"], before["packs"]
            return Maintenance(False, 0.0, n, n, packs, packs)
        started = time.perf_counter()
        try:
            self._run("gc", "--quiet", timeout_s=timeout_s)
        finally:
            self._repo.git.clear_cache()  # packs changed under the persistent cat-file
        seconds = time.perf_counter() - started
        after = self.objects()
        self._kept_loose = after["count"]
        return Maintenance(
            True,
            seconds,
            before["count"],
            after["count"],
            before["packs"],
            after["packs"],
        )
