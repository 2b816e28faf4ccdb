"""Git URLs, archives (with path-traversal protection) and index slugs with sha256 checks."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest
from install_support import FIXTURES, bare_repo

from nexflow.skills.install import IndexMismatch, Installer, SourceError, UnsafeArchive


def clean_files() -> dict[str, bytes]:
    root = FIXTURES / "clean"
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_git_url_is_cloned_shallow(installer: Installer, home: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    shutil.copytree(FIXTURES / "clean", work)
    commit = bare_repo(work, tmp_path / "skill.git")
    url = (tmp_path / "skill.git").as_uri()
    plan = installer.plan(url)
    assert plan.kind == "git" and plan.version == commit
    assert not (plan.staged / ".git").exists()
    done = installer.commit(plan)
    assert sorted(done.files) == ["SKILL.md", "scripts/count.py"]
    assert installer.lock().entries["word-count"].source == url


def test_git_url_with_a_subfolder(installer: Installer, tmp_path: Path) -> None:
    work = tmp_path / "work"
    shutil.copytree(FIXTURES / "clean", work / "skills" / "word-count")
    shutil.copytree(FIXTURES / "pipe-to-shell", work / "skills" / "fast-setup")
    bare_repo(work, tmp_path / "pack.git")
    url = (tmp_path / "pack.git").as_uri()
    with pytest.raises(SourceError, match="holds 2 skills"):
        installer.plan(url)
    plan = installer.plan(f"{url}#skills/fast-setup")
    assert plan.name == "fast-setup" and plan.flagged
    installer.discard(plan)


def test_git_failure_is_one_clear_line(installer: Installer, tmp_path: Path) -> None:
    url = (tmp_path / "missing.git").as_uri()
    with pytest.raises(SourceError, match=r"git clone .*missing\.git failed: .*"):
        installer.plan(url)


def make_zip(path: Path, files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def make_tar(path: Path, files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return path


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_archives_install(installer: Installer, tmp_path: Path, suffix: str) -> None:
    files = {f"word-count-1.2.0/{k}": v for k, v in clean_files().items()}
    make = make_zip if suffix == ".zip" else make_tar
    archive = make(tmp_path / f"skill{suffix}", files)
    plan = installer.plan(str(archive))
    assert plan.kind == "archive" and plan.name == "word-count"
    done = installer.commit(plan)
    assert sorted(done.files) == ["SKILL.md", "scripts/count.py"]


def test_archive_by_url(installer: Installer, tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "skill.zip", clean_files())
    plan = installer.plan(archive.as_uri())
    assert plan.name == "word-count"
    installer.discard(plan)


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
@pytest.mark.parametrize(
    ("files", "links", "message"),
    [
        ({"../evil.sh": b"x"}, {}, r"escapes the folder \('\.\.'\)"),
        ({"a/../../evil.sh": b"x"}, {}, r"escapes the folder"),
        ({"/etc/evil": b"x"}, {}, r"absolute path"),
        ({"SKILL.md": b"x"}, {"link": "/etc/passwd"}, r"link; refused|symbolic link; refused"),
    ],
)
def test_hostile_archives_are_refused(
    installer: Installer,
    tmp_path: Path,
    home: Path,
    suffix: str,
    files: dict[str, bytes],
    links: dict[str, str],
    message: str,
) -> None:
    make = make_zip if suffix == ".zip" else make_tar
    archive = make(tmp_path / f"evil{suffix}", files, links)
    with pytest.raises(UnsafeArchive, match=message):
        installer.plan(str(archive))
    assert not (tmp_path / "evil.sh").exists() and not (home / "evil.sh").exists()
    assert not any((home / "quarantine" / "skills").iterdir())


def test_a_broken_archive_is_a_clear_error(installer: Installer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(SourceError, match=r"bad\.zip is not a readable archive"):
        installer.plan(str(bad))


def write_index(tmp_path: Path, files: dict[str, str], source: str = "skills/word-count") -> Path:
    index = tmp_path / "index.json"
    entry = {"slug": "word-count", "source": source, "version": "1.2.0", "sha256": files}
    index.write_text(json.dumps({"skills": [entry]}))
    return index


def published(tmp_path: Path) -> dict[str, str]:
    shutil.copytree(FIXTURES / "clean", tmp_path / "skills" / "word-count")
    return {k: hashlib.sha256(v).hexdigest() for k, v in clean_files().items()}


def test_index_slug_installs_when_hashes_match(home: Path, tmp_path: Path) -> None:
    index = write_index(tmp_path, published(tmp_path))
    installer = Installer.at_home(home, index=str(index))
    plan = installer.plan("word-count")
    assert plan.kind == "index" and plan.version == "1.2.0"
    installer.commit(plan)
    entry = installer.lock().entries["word-count"]
    assert entry.kind == "index" and entry.source == "word-count"
    assert entry.index == str(index)


def test_index_by_url(home: Path, tmp_path: Path) -> None:
    index = write_index(tmp_path, published(tmp_path))
    installer = Installer.at_home(home)
    plan = installer.plan("word-count", index=index.as_uri())
    assert plan.name == "word-count"
    installer.discard(plan)


def test_index_hash_mismatch_is_refused(home: Path, tmp_path: Path) -> None:
    hashes = published(tmp_path)
    (tmp_path / "skills" / "word-count" / "scripts" / "count.py").write_text("print('evil')\n")
    installer = Installer.at_home(home, index=str(write_index(tmp_path, hashes)))
    with pytest.raises(
        IndexMismatch, match=r"do not match the index; refused: scripts/count\.py has sha256"
    ):
        installer.plan("word-count")
    assert not (home / "skills").exists()
    assert not any((home / "quarantine" / "skills").iterdir())


def test_index_refuses_files_it_does_not_list(home: Path, tmp_path: Path) -> None:
    hashes = published(tmp_path)
    (tmp_path / "skills" / "word-count" / "payload.sh").write_text("echo hi\n")
    installer = Installer.at_home(home, index=str(write_index(tmp_path, hashes)))
    with pytest.raises(IndexMismatch, match=r"payload\.sh is not listed in the index"):
        installer.plan("word-count")


def test_index_unknown_slug(home: Path, tmp_path: Path) -> None:
    installer = Installer.at_home(home, index=str(write_index(tmp_path, published(tmp_path))))
    with pytest.raises(SourceError, match="no skill 'nope' in the index"):
        installer.plan("nope")


def test_index_entry_without_hashes_is_refused(home: Path, tmp_path: Path) -> None:
    installer = Installer.at_home(home, index=str(write_index(tmp_path, {})))
    with pytest.raises(SourceError, match="needs a 'source' and 'sha256'"):
        installer.plan("word-count")


def test_a_local_bare_repository_path_is_cloned(installer: Installer, tmp_path: Path) -> None:
    work = tmp_path / "work"
    shutil.copytree(FIXTURES / "clean", work)
    commit = bare_repo(work, tmp_path / "skill.git")
    plan = installer.plan(str(tmp_path / "skill.git"))
    assert plan.kind == "git" and plan.version == commit
    installer.discard(plan)


@pytest.mark.parametrize(
    "url", ["ext::sh -c touch% /tmp/x.git", "-uhack.git", "fd::3.git", "weird:/x.git"]
)
def test_dangerous_git_transports_are_refused(installer: Installer, url: str) -> None:
    with pytest.raises(SourceError, match="is not a git URL Nexflow clones"):
        installer.plan(url)


def test_index_recorded_when_given_per_call(home: Path, tmp_path: Path) -> None:
    index = write_index(tmp_path, published(tmp_path))
    installer = Installer.at_home(home)
    installer.commit(installer.plan("word-count", index=str(index)))
    assert installer.lock().entries["word-count"].index == str(index)
    plan, _ = installer.plan_update("word-count")
    assert plan.kind == "index"
    installer.discard(plan)


def test_a_huge_folder_is_not_copied(
    installer: Installer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nexflow.skills.install import sources

    monkeypatch.setattr(sources, "MAX_ENTRIES", 3)
    big = tmp_path / "big"
    big.mkdir()
    for i in range(5):
        (big / f"f{i}.txt").write_text("x")
    with pytest.raises(SourceError, match="holds more than 3 files"):
        installer.plan(str(big))
