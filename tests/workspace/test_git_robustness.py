"""Git work cannot hang and repositories stay small: every git process and object read is
killed past ``timeout_s`` (GitTimeout, main unchanged, no stale lock), ``maintain()``
packs the loose objects and keeps what refs reach, the policy says when. Real git: the
hangs are a hook that sleeps and an object file that is a FIFO (a read blocks for ever)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from git.exc import GitCommandError

from nexflow.workspace.api import WorkspaceError
from nexflow.workspace.gitrepo import MAIN, PATCH_PREFIX, GitRepo, GitTimeout
from nexflow.workspace.maintenance import MaintenancePolicy
from nexflow.workspace.repos import in_thread

SHORT = 1.0  # the timeout of the calls meant to hang
SLOW_HOOK = "#!/bin/sh\nsleep 60 &\necho $! > {pid}\nwait\n"  # the sleep is the hook's child


def git(path: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def loose(path: Path) -> int:
    counts = dict(line.split(": ") for line in git(path, "count-objects", "-v").splitlines())
    return int(counts["count"])


def exists(path: Path, sha: str) -> bool:
    return subprocess.run(["git", "cat-file", "-e", sha], cwd=path, check=False).returncode == 0


def dead(pid: int, within_s: float = 5.0) -> bool:
    """The process is gone or a zombie, within ``within_s`` (SIGKILL is delivered when the
    process next runs, which a loaded machine may delay)."""
    deadline = time.monotonic() + within_s
    while not _dead_now(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _dead_now(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")  # a zombie is dead too


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[GitRepo]:
    r = GitRepo.create(tmp_path / "ws", {"README.md": "# ws\n"}, "Create workspace", "u1")
    yield r
    r.close()


def mirror_commits(repo: GitRepo, n: int, on_commit: Callable[[], None] | None = None) -> None:
    """``n`` commits the way the mirror makes them: one state file, then main moves."""
    for i in range(n):
        head = repo.head()
        assert head is not None
        state = json.dumps({"items": [f"item {j}" for j in range(i + 1)]}, indent=2)
        sha = repo.commit(head, {f"panels/p{i % 3}.state.json": state}, f"commit {i}", "u1")
        repo.update_ref(MAIN, sha, head)
        if on_commit is not None:
            on_commit()


def hook(repo: GitRepo, name: str) -> Path:
    path = repo.path / ".git" / "hooks" / name
    path.write_text(SLOW_HOOK.format(pid=repo.path / "hook.pid"))
    path.chmod(0o755)
    return path


# -- timeouts -----------------------------------------------------------------------


async def test_a_hung_update_ref_is_killed_main_stays_and_the_lock_goes(repo: GitRepo) -> None:
    old = repo.head()
    assert old is not None
    new = repo.commit(old, {"a.md": "a\n"}, "next", "u1")
    slow = GitRepo(repo.path, timeout_s=SHORT)
    sleeper = hook(repo, "reference-transaction")  # runs with main.lock held
    try:
        started = time.monotonic()
        with pytest.raises(GitTimeout) as caught:
            slow.update_ref(MAIN, new, old)
        assert time.monotonic() - started < SHORT + 5
        err = caught.value
        assert isinstance(err, GitCommandError)  # what the service translates
        assert str(err).startswith(f"git update-ref timed out after {SHORT:g} s and was killed")
        assert "refs/heads/main.lock" in err.removed
        assert git(repo.path, "rev-parse", "main") == old  # not half-moved: not moved
        assert not (repo.path / ".git" / "refs" / "heads" / "main.lock").exists()
        assert dead(int((repo.path / "hook.pid").read_text()))  # the hook's child too

        # the service turns it into a WorkspaceError, not "main moved, try again"
        with pytest.raises(WorkspaceError) as translated:
            await in_thread(slow.update_ref, MAIN, new, old)
        assert "refused the operation" in translated.value.message
        assert isinstance(translated.value.__cause__, GitTimeout)
    finally:
        sleeper.unlink()
        slow.close()
    repo.update_ref(MAIN, new, old)  # no stale lock refuses it
    assert git(repo.path, "rev-parse", "main") == new


@pytest.mark.parametrize(
    ("op", "command"),
    [
        (lambda r, old, new: r.meta(new), "cat-file"),
        (lambda r, old, new: r.read(new, "a.md"), "cat-file"),
        (lambda r, old, new: r.tree_of(new), "cat-file"),
        (lambda r, old, new: r.commit(new, {"b.md": "b\n"}, "on top", "u1"), "cat-file"),
        (lambda r, old, new: r.head(new), "rev-parse"),
        (lambda r, old, new: r.files(new), "ls-tree"),
        (lambda r, old, new: r.diff_text(old, new), "diff"),
        (lambda r, old, new: r.is_ancestor(old, new), "merge-base"),
    ],
    ids=["meta", "read", "tree_of", "commit", "head", "files", "diff_text", "is_ancestor"],
)
def test_a_read_that_blocks_is_killed_and_the_next_works(
    repo: GitRepo, op: Callable[[GitRepo, str, str], object], command: str
) -> None:
    old = repo.head()
    assert old is not None
    new = repo.commit(old, {"a.md": "a\n"}, "next", "u1")
    obj = repo.path / ".git" / "objects" / new[:2] / new[2:]
    saved = obj.read_bytes()
    slow = GitRepo(repo.path, timeout_s=SHORT)
    assert slow.meta(old).message == "Create workspace"  # cat-file is up and answering
    obj.unlink()
    os.mkfifo(obj)  # opening it blocks until a writer comes: a hung disk, as git sees it
    try:
        started = time.monotonic()
        with pytest.raises(GitTimeout) as caught:
            op(slow, old, new)
        assert time.monotonic() - started < SHORT + 5
        assert str(caught.value).startswith(f"git {command} timed out after {SHORT:g} s")
    finally:
        obj.unlink()
        obj.write_bytes(saved)
    try:  # the same repository object reads again (new cat-file processes)
        assert slow.meta(new).message == "next"
        assert slow.read(new, "a.md") == "a\n"
        assert slow.files(new) == {"README.md": 5, "a.md": 2}
    finally:
        slow.close()


def test_a_hung_gc_is_killed_and_leaves_nothing_in_the_way(repo: GitRepo) -> None:
    mirror_commits(repo, 12)
    head = repo.head()
    assert head is not None
    repo.update_ref(PATCH_PREFIX + "p1", head, "0" * 40)
    obj = repo.path / ".git" / "objects" / head[:2] / head[2:]
    saved = obj.read_bytes()
    obj.unlink()
    os.mkfifo(obj)
    slow = GitRepo(repo.path, timeout_s=SHORT)
    try:
        with pytest.raises(GitTimeout, match=f"^git gc timed out after {SHORT:g} s"):
            slow.maintain(loose_limit=0)
    finally:
        obj.unlink()
        obj.write_bytes(saved)
        slow.close()
    left = [p.name for p in (repo.path / ".git").iterdir()]
    assert not [n for n in left if n.endswith((".lock", ".new")) or n == "gc.pid"]
    # gc, a commit and the deletion of a packed branch all work after it
    assert repo.maintain(loose_limit=0).ran
    assert "refs/heads/nexflow/patch/p1" in (repo.path / ".git" / "packed-refs").read_text()
    mirror_commits(repo, 1)
    repo.delete_ref(PATCH_PREFIX + "p1")
    assert repo.refs(PATCH_PREFIX) == {}
    git(repo.path, "fsck", "--no-dangling")


# -- maintenance --------------------------------------------------------------------


def test_maintain_packs_loose_objects_only_past_the_limit(repo: GitRepo) -> None:
    mirror_commits(repo, 60)
    before = loose(repo.path)
    assert before > 200  # ~4 objects a commit

    idle = repo.maintain()  # the default limit, 1,000: nothing to do yet
    assert not idle.ran
    assert idle.seconds == 0
    assert loose(repo.path) == idle.loose_before == idle.loose_after == before

    done = repo.maintain(loose_limit=50)
    assert done.ran
    assert (done.loose_before, done.packs_before) == (before, 0)
    assert loose(repo.path) == done.loose_after == 0
    assert done.packs_after == 1
    assert not repo.maintain(loose_limit=50).ran  # packed already

    # everything still reads, through git and through this object, and commits go on
    git(repo.path, "fsck", "--no-dangling")
    head = repo.head()
    assert head is not None
    assert repo.read(head, "panels/p2.state.json") is not None
    assert len(repo.log(MAIN, ["panels/p0.state.json"], 100)) == 20
    mirror_commits(repo, 1)
    head = repo.head()
    assert head is not None
    assert repo.meta(head).message == "commit 0"


def test_gc_keeps_pending_patch_branches_and_prunes_what_no_ref_reaches(
    repo: GitRepo,
) -> None:
    git(repo.path, "config", "gc.pruneExpire", "now")  # prune unreachable objects at once
    base = repo.head()
    assert base is not None
    pending = repo.commit(base, {"notes/plan.md": "pending patch\n"}, "Patch p1", "nexflow-ai")
    repo.update_ref(PATCH_PREFIX + "p1", pending, "0" * 40)
    rejected = repo.commit(base, {"notes/plan.md": "rejected patch\n"}, "Patch p2", "nexflow-ai")
    repo.update_ref(PATCH_PREFIX + "p2", rejected, "0" * 40)
    repo.delete_ref(PATCH_PREFIX + "p2")  # rejected: its branch is deleted
    mirror_commits(repo, 20)

    assert repo.maintain(loose_limit=10).ran

    assert not exists(repo.path, rejected)  # the control: gc did prune
    assert exists(repo.path, pending)
    assert repo.refs(PATCH_PREFIX) == {PATCH_PREFIX + "p1": pending}
    assert repo.read(pending, "notes/plan.md") == "pending patch\n"
    assert repo.changed(base, pending) == ["notes/plan.md"]
    repo.delete_ref(PATCH_PREFIX + "p1")  # a packed ref deletes too
    assert repo.refs(PATCH_PREFIX) == {}


# -- the policy ---------------------------------------------------------------------


def test_policy_says_first_commit_then_every_n() -> None:
    policy = MaintenancePolicy(every_commits=3)
    said = [policy.note_commit("u1/default") for _ in range(8)]
    assert said == [True, False, False, True, False, False, True, False]
    assert policy.note_commit("u2/default")  # counted per repository
    assert policy.note_commit("u1/default", commits=5)  # a batch counts as many
    policy.forget("u1/default")
    assert policy.note_commit("u1/default")

    never = MaintenancePolicy(every_commits=0)
    assert not any(never.note_commit("u1/default") for _ in range(10))
    with pytest.raises(ValueError):
        MaintenancePolicy(every_commits=-1)


def test_policy_driven_maintenance_keeps_a_repository_packed(repo: GitRepo) -> None:
    policy = MaintenancePolicy(every_commits=20, loose_limit=30)
    runs = []

    def after_commit() -> None:
        if policy.note_commit("u1/default"):
            runs.append(repo.maintain(loose_limit=policy.loose_limit))

    mirror_commits(repo, 50, after_commit)
    assert len(runs) == 3  # commits 1, 21, 41
    assert [r.ran for r in runs] == [False, True, True]
    assert loose(repo.path) < 50
    git(repo.path, "fsck", "--no-dangling")
