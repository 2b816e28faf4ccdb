"""file-write through the real SkillRunner, including hostile paths."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from mvp_support import RunSkill, exists, names

from nexflow.skills import SkillInputInvalid
from nexflow.skills.isolation import IsolationLevel


async def test_write_append_create(
    run_skill: RunSkill, workspace: Path, level: IsolationLevel
) -> None:
    r = await run_skill("file-write", {"path": "notes/a/b.md", "content": "héllo\n"}, level=level)
    assert r.ok, (r.error, r.stderr_tail)
    assert r.data == {
        "path": "notes/a/b.md",
        "mode": "overwrite",
        "bytes_written": 7,
        "size": 7,
        "created": True,
    }
    r = await run_skill(
        "file-write", {"path": "notes/a/b.md", "content": "more\n", "mode": "append"}, level=level
    )
    assert r.ok and r.data is not None and r.data["size"] == 12 and not r.data["created"]
    assert (workspace / "notes/a/b.md").read_text() == "héllo\nmore\n"
    r = await run_skill("file-write", {"path": "notes/a/b.md", "content": "x", "mode": "create"})
    assert not r.ok and "already exists" in r.stderr_tail
    assert (workspace / "notes/a/b.md").read_text() == "héllo\nmore\n"


async def test_overwrite_is_atomic_and_keeps_mode(run_skill: RunSkill, workspace: Path) -> None:
    target = workspace / "run.sh"
    target.write_text("old")
    target.chmod(0o750)
    r = await run_skill("file-write", {"path": "./run.sh", "content": "new"})
    assert r.ok and target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o750
    assert names(workspace) == ["run.sh"]  # no temp file left


async def test_absolute_path_inside_workspace_and_base64(
    run_skill: RunSkill, workspace: Path
) -> None:
    blob = bytes(range(256))
    r = await run_skill(
        "file-write",
        {
            "path": str(workspace / "bin.dat"),
            "content": base64.b64encode(blob).decode(),
            "encoding": "base64",
        },
    )
    assert r.ok and (workspace / "bin.dat").read_bytes() == blob


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("../escape.txt", "contains '..'"),
        ("a/../../escape.txt", "contains '..'"),
        ("/tmp/nexflow-escape.txt", "outside the workspace"),
        (".git/hooks/pre-commit", "inside .git"),
        ("x\u0000y", "NUL"),
        ("", "non-empty"),
        ("./", "workspace itself"),
    ],
)
async def test_hostile_paths_refused(
    run_skill: RunSkill, workspace: Path, path: str, why: str
) -> None:
    r = await run_skill("file-write", {"path": path, "content": "pwned"})
    assert not r.ok and r.exit_code == 2
    assert why in r.stderr_tail
    assert not (workspace.parent / "escape.txt").exists()
    assert not exists(Path("/tmp/nexflow-escape.txt"))


async def test_symlink_escapes_refused(
    run_skill: RunSkill, workspace: Path, tmp_path: Path, level: IsolationLevel
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text("keep")
    (workspace / "dirlink").symlink_to(outside)
    (workspace / "filelink").symlink_to(secret)
    (workspace / "inner").mkdir()
    (workspace / "inner" / "up").symlink_to(workspace.parent)
    cases = [
        ({"path": "dirlink/new.txt", "content": "x"}, "symlink or not a folder"),
        ({"path": "filelink", "content": "x"}, "is a symlink"),
        ({"path": "filelink", "content": "x", "mode": "append"}, "is a symlink"),
        ({"path": "inner/up/escape.txt", "content": "x"}, "symlink or not a folder"),
    ]
    for payload, why in cases:
        r = await run_skill("file-write", payload, level=level)
        assert not r.ok, payload
        assert why in r.stderr_tail, (payload, r.stderr_tail)
    assert secret.read_text() == "keep"
    assert names(outside) == ["secret.txt"]
    assert not (workspace.parent / "escape.txt").exists()


async def test_append_to_hard_link_refused(
    run_skill: RunSkill, workspace: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "shared.txt"
    outside.write_text("keep")
    os.link(outside, workspace / "hard.txt")
    r = await run_skill("file-write", {"path": "hard.txt", "content": "x", "mode": "append"})
    assert not r.ok and "hard links" in r.stderr_tail
    r = await run_skill("file-write", {"path": "hard.txt", "content": "new"})
    assert r.ok  # overwrite replaces the link, never writes the shared inode
    assert outside.read_text() == "keep" and (workspace / "hard.txt").read_text() == "new"


async def test_size_caps(run_skill: RunSkill, workspace: Path) -> None:
    r = await run_skill("file-write", {"path": "big.txt", "content": "x" * (1024 * 1024 + 1)})
    assert not r.ok and "limit is 1048576" in r.stderr_tail
    assert not (workspace / "big.txt").exists()
    (workspace / "log.txt").write_bytes(b"x" * (8 * 1024 * 1024 - 10))
    r = await run_skill("file-write", {"path": "log.txt", "content": "y" * 20, "mode": "append"})
    assert not r.ok and "larger than 8 MB" in r.stderr_tail
    r = await run_skill("file-write", {"path": "b.bin", "content": "%%%", "encoding": "base64"})
    assert not r.ok and "not valid base64" in r.stderr_tail


async def test_schema_rejects_unknown_fields(run_skill: RunSkill) -> None:
    with pytest.raises(SkillInputInvalid, match="unexpected property 'follow'"):
        await run_skill("file-write", {"path": "a", "content": "b", "follow": True})
    with pytest.raises(SkillInputInvalid, match="mode"):
        await run_skill("file-write", {"path": "a", "content": "b", "mode": "truncate"})
