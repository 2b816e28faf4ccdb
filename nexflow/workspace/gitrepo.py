"""One workspace's git repository, driven through plumbing.

Commits are built in Python: the blobs, the trees on the changed paths and the commit
object are written straight to the loose object store (trees are read through GitPython's
persistent ``cat-file`` process), and published with a compare-and-swap ``update-ref``,
so making a patch or a merge never touches the work tree; only
:meth:`GitRepo.refresh_worktree` does, after ``main`` moved. A mirror commit starts two
git processes (``update-ref``, ``reset``) where a temporary index took eight. Every method
blocks: the service calls them through ``asyncio.to_thread`` under the workspace lock.
Git failures surface as :class:`git.GitCommandError` (the service translates them).

GitPython is imported when the first repository is opened, not with this module: the
gateway imports the workspace layer on start-up and must not pay for ``git``/``gitdb``
before it answers (a test checks ``import nexflow.app`` leaves them out).
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

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
    def __init__(self, path: Path) -> None:
        from git import Repo
        from gitdb.db import LooseObjectDB

        self.path = path
        self._repo: Repo = Repo(path)
        self._loose: LooseObjectDB = LooseObjectDB(str(Path(self._repo.git_dir) / "objects"))
        self._bytes: dict[str, int] = {}  # commit -> bytes of its files (see total_bytes)

    @classmethod
    def create(cls, path: Path, files: Mapping[str, str], message: str, author: str) -> GitRepo:
        """A new repository whose ``main`` holds ``files`` (checked out)."""
        from git import Repo

        path.mkdir(parents=True, exist_ok=True)
        Repo.init(path, initial_branch="main").close()
        repo = cls(path)
        writer = repo._repo.config_writer()
        writer.set_value("core", "autocrlf", "false")
        writer.set_value("commit", "gpgsign", "false")
        writer.release()
        sha = repo.commit(None, files, message, author)
        repo.update_ref(MAIN, sha, ZERO)
        repo.refresh_worktree()
        return repo

    def close(self) -> None:
        self._repo.close()

    # -- reading ------------------------------------------------------------------

    def head(self, ref: str = MAIN) -> str | None:
        if ref.startswith("refs/heads/"):  # a branch: read the ref file, no process
            from git.refs.symbolic import SymbolicReference

            try:
                return SymbolicReference.dereference_recursive(self._repo, ref)
            except ValueError:
                return None
        status, out, _ = self._repo.git.execute(
            ["git", "rev-parse", "--verify", "-q", f"{ref}^{{commit}}"],
            with_extended_output=True,
            with_exceptions=False,
        )
        return str(out).strip() if status == 0 else None

    def tree_of(self, commit: str) -> str:
        if _SHA.fullmatch(commit):
            header = self._object(bytes.fromhex(commit)).split(b"\n", 1)[0]
            if header.startswith(b"tree "):
                return header[5:].decode("ascii")
        return str(self._repo.git.rev_parse(f"{commit}^{{tree}}"))

    def read(self, commit: str, path: str) -> str | None:
        try:
            blob = self._repo.commit(commit).tree / path
        except KeyError:
            return None
        data: bytes = blob.data_stream.read()
        return data.decode("utf-8")

    def files(self, commit: str) -> dict[str, int]:
        """Every file at ``commit`` with its size in bytes."""
        out = str(self._repo.git.ls_tree("-r", "-l", "-z", commit))
        sizes: dict[str, int] = {}
        for entry in filter(None, out.split("\0")):
            meta, path = entry.split("\t", 1)
            size = meta.split()[3]
            sizes[path] = int(size) if size.isdigit() else 0
        return sizes

    def total_bytes(self, commit: str) -> int:
        """The size of every file at ``commit``; remembered for the commits this object
        made, so a run of mirror commits lists no tree."""
        total = self._bytes.get(commit)
        if total is None:
            total = self._bytes[commit] = sum(self.files(commit).values())
        return total

    def sizes(self, commit: str, paths: Sequence[str]) -> dict[str, int]:
        """Sizes of those of ``paths`` that are files at ``commit``."""
        tree = self._repo.commit(commit).tree
        out: dict[str, int] = {}
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
        out = str(self._repo.git.diff("--name-only", "-z", "--no-renames", old, new))
        return [p for p in out.split("\0") if p]

    def diff_text(self, old: str, new: str) -> str:
        return str(self._repo.git.diff("--no-color", "--no-renames", old, new))

    def meta(self, commit: str) -> CommitMeta:
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
        out = str(
            self._repo.git.log("--first-parent", f"-n{limit}", "--format=%H", ref, "--", *paths)
        )
        return [self.meta(sha) for sha in out.split()]

    def is_ancestor(self, older: str, newer: str) -> bool:
        status, _, _ = self._repo.git.execute(
            ["git", "merge-base", "--is-ancestor", older, newer],
            with_extended_output=True,
            with_exceptions=False,
        )
        return status == 0

    def refs(self, prefix: str) -> dict[str, str]:
        out = str(self._repo.git.for_each_ref("--format=%(refname) %(objectname)", prefix))
        return dict(line.split(" ", 1) for line in out.splitlines() if line)

    def first_merge_of(self, commit: str, ref: str = MAIN) -> str | None:
        """The merge commit on ``ref``'s first-parent line whose second parent is ``commit``."""
        out = str(self._repo.git.log("--first-parent", "--merges", "--format=%H %P", ref))
        for line in out.splitlines():
            sha, *parents = line.split()
            if commit in parents[1:]:
                return sha
        return None

    # -- writing ------------------------------------------------------------------

    def _object(self, binsha: bytes) -> bytes:
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
        """Move ``ref`` to ``new`` only if it is at ``old`` (``ZERO``: must not exist)."""
        from git.exc import GitCommandError

        try:
            self._repo.git.update_ref("-m", "nexflow", ref, new, old)
        except GitCommandError as exc:
            raise RefMoved(f"{ref} is not at {old[:12]} any more") from exc

    def delete_ref(self, ref: str) -> None:
        self._repo.git.update_ref("-d", ref)

    def refresh_worktree(self) -> None:
        """Make the checked-out files match ``main`` (the work tree is Nexflow's)."""
        self._repo.git.reset("--hard", "--quiet")

    def merge_text(self, base: str, ours: str, theirs: str) -> str | None:
        """Three-way merge of one text (``git merge-file``); None when the edits overlap."""
        with tempfile.TemporaryDirectory(prefix="nexflow-merge-") as tmp:
            paths = []
            for name, text in (("ours", ours), ("base", base), ("theirs", theirs)):
                path = Path(tmp) / name
                path.write_text(text, encoding="utf-8")
                paths.append(str(path))
            status, out, _ = self._repo.git.execute(
                ["git", "merge-file", "-p", "--quiet", *paths],
                with_extended_output=True,
                with_exceptions=False,
                strip_newline_in_stdout=False,
            )
            return str(out) if status == 0 else None
