"""Fetch an install source into a quarantine folder.

Sources, told apart by their shape:

* a local folder (or its ``SKILL.md`` / ``.nxml`` file);
* a git URL (``https://…``, ``ssh://``, ``git@host:…``, ``file://…``, ``git+…``), cloned with
  ``git clone --depth 1``; ``#sub/dir`` picks a folder inside the repository;
* an archive (``.zip``, ``.tar.gz``, ``.tgz``, ``.tar``), a path or a URL; entries that
  would escape the folder (absolute paths, ``..``, links, devices) refuse the archive;
* an index slug: looked up in an index (a JSON file or URL) that gives the slug's source,
  version and the sha256 of every file; a fetched file that does not match is refused.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import tarfile
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from nexflow.skills.install.errors import IndexMismatch, SourceError, UnsafeArchive
from nexflow.skills.install.lock import compare_tree

ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")
MAX_DOWNLOAD_BYTES = 50 * 1024 * 1024
MAX_EXTRACTED_BYTES = 100 * 1024 * 1024
MAX_ENTRIES = 5_000
GIT_TIMEOUT_S = 120.0
_GIT_PREFIXES = ("git+", "git@", "ssh://", "git://")
_GIT_URL = re.compile(r"^(?:(?:https?|ssh|git|file)://|[\w.-]+@[\w.-]+:(?!/)?)[^\s]+$")
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class Fetched:
    """What a source produced: ``path`` holds the content (inside the stage folder)."""

    kind: str
    path: Path
    version: str | None = None
    expected: Mapping[str, str] | None = None
    """From an index: relative path → sha256 every fetched file must match."""
    subdir: str = ""


@dataclass(frozen=True)
class IndexEntry:
    slug: str
    source: str
    version: str | None
    files: Mapping[str, str] = field(default_factory=dict)


def classify(source: str, *, index: str | None = None) -> str:
    """``folder``, ``git``, ``archive`` or ``index``; raises :class:`SourceError`."""
    base = source.split("#", 1)[0]
    lowered = base.lower().split("?", 1)[0]
    if lowered.endswith(ARCHIVE_SUFFIXES):
        return "archive"
    local_dir = Path(base).expanduser()
    if "://" not in base and local_dir.is_dir():
        bare = (local_dir / "HEAD").is_file() and (local_dir / "objects").is_dir()
        return "git" if bare else "folder"
    if base.startswith(_GIT_PREFIXES) or lowered.endswith(".git"):
        return "git"
    local = _file_url_path(base)
    if local is not None and local.is_dir() and not _is_git_repo(local):
        return "folder"
    if "://" in base:
        return "git"
    path = Path(base).expanduser()
    if path.exists():
        return "folder"
    if _SLUG.match(source) and index:
        return "index"
    if _SLUG.match(source):
        raise SourceError(
            f"{source!r} is not a folder here; to install it by name give an index "
            "(--index FILE_OR_URL, or NEXFLOW_SKILLS_INDEX)"
        )
    raise SourceError(f"no such folder or archive: {source}")


def _file_url_path(source: str) -> Path | None:
    if not source.startswith("file://"):
        return None
    return Path(urllib.request.url2pathname(urllib.parse.urlparse(source).path))


def _is_git_repo(path: Path) -> bool:
    return (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir())


def normalize(source: str, *, index: str | None = None) -> str:
    """The source as recorded in the lock: local paths made absolute, so ``update`` works
    from any folder."""
    kind = classify(source, index=index)
    base, sep, subdir = source.partition("#")
    if kind in ("folder", "archive", "git") and "://" not in base and Path(base).exists():
        return str(Path(base).expanduser().resolve()) + sep + subdir
    return source


def fetch(source: str, dest: Path, *, index: str | None = None) -> Fetched:
    """Copy, clone, extract or download ``source`` into the empty folder ``dest``."""
    kind = classify(source, index=index)
    base, _, subdir = source.partition("#")
    if kind == "index":
        assert index is not None
        entry = lookup(index, source)
        inner = fetch(entry.source, dest)
        return Fetched("index", inner.path, entry.version, entry.files, inner.subdir)
    if kind == "folder":
        local = _file_url_path(base) or Path(base).expanduser()
        return Fetched("folder", _copy_folder(local, dest), subdir=subdir)
    if kind == "git":
        local = Path(base).expanduser()
        url = local.resolve().as_uri() if "://" not in base and local.is_dir() else base
        path, commit = _clone(url, dest)
        return Fetched("git", path, commit, subdir=subdir)
    archive = _local_or_download(base, dest.parent / "download")
    return Fetched("archive", extract(archive, dest), subdir=subdir)


def _check_folder_size(src: Path) -> None:
    """Refuse to copy a folder that is clearly not one skill (a home folder, a disk)."""
    entries = size = 0
    for folder, dirs, files in os.walk(src):
        dirs[:] = [d for d in dirs if d not in (".git", "__pycache__")]
        for name in files:
            entries += 1
            path = Path(folder) / name
            if not path.is_symlink():
                size += path.stat().st_size
        if entries > MAX_ENTRIES or size > MAX_EXTRACTED_BYTES:
            raise SourceError(
                f"{src} holds more than {MAX_ENTRIES} files or "
                f"{MAX_EXTRACTED_BYTES // (1024 * 1024)} MB; not a skill folder"
            )


def _copy_folder(src: Path, dest: Path) -> Path:
    import shutil

    if src.is_dir():
        _check_folder_size(src)
    if src.is_file():
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / src.name, follow_symlinks=False)
        return dest
    try:
        shutil.copytree(
            src, dest, symlinks=True, ignore=shutil.ignore_patterns(".git", "__pycache__")
        )
    except (OSError, shutil.Error) as e:
        raise SourceError(f"cannot copy {src}: {e}") from e
    return dest


def _clone(url: str, dest: Path) -> tuple[Path, str | None]:
    url = url.removeprefix("git+")
    if not _GIT_URL.match(url):
        raise SourceError(
            f"{url!r} is not a git URL Nexflow clones (https, http, ssh, git, file, or "
            "user@host:path)"
        )
    env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        # No ext:: or fd:: transports, whatever the user's git config says.
        "GIT_ALLOW_PROTOCOL": "https:http:ssh:git:file",
    }
    cmd = ["git", "clone", "--depth", "1", "--quiet", "--no-tags", "--", url, str(dest)]
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=GIT_TIMEOUT_S, env=env, check=False
        )
    except FileNotFoundError as e:
        raise SourceError("git is not installed; it is needed to install from a git URL") from e
    except subprocess.TimeoutExpired as e:
        raise SourceError(f"git clone {url} took longer than {GIT_TIMEOUT_S:.0f} s") from e
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        why = next((ln for ln in lines if ln.startswith("fatal:")), None) or (
            lines[0] if lines else f"exit status {done.returncode}"
        )
        raise SourceError(f"git clone {url} failed: {why.removeprefix('fatal: ')}")
    head = subprocess.run(
        ["git", "-C", str(dest), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT_S,
        check=False,
    )
    from nexflow.skills.install.quarantine import remove_tree

    remove_tree(dest / ".git")
    return dest, head.stdout.strip() or None


def _read_url(url: str, limit: int = MAX_DOWNLOAD_BYTES) -> bytes:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https", "file"):
        raise SourceError(f"unsupported URL scheme {parsed.scheme!r} in {url}")
    try:
        with urllib.request.urlopen(url, timeout=60) as response:  # the scheme is checked above
            data: bytes = response.read(limit + 1)
    except (OSError, ValueError) as e:
        raise SourceError(f"cannot download {url}: {e}") from e
    if len(data) > limit:
        raise SourceError(f"{url} is larger than {limit // (1024 * 1024)} MB")
    return data


def _local_or_download(source: str, folder: Path) -> Path:
    if "://" not in source:
        path = Path(source).expanduser()
        if not path.is_file():
            raise SourceError(f"no such archive: {source}")
        return path
    folder.mkdir(parents=True, exist_ok=True)
    name = PurePosixPath(urllib.parse.urlparse(source).path).name or "archive"
    target = folder / name
    target.write_bytes(_read_url(source))
    return target


def _entry_path(name: str, archive: Path) -> PurePosixPath:
    raw = name.replace("\\", "/")
    pure = PurePosixPath(raw)
    if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw):
        raise UnsafeArchive(f"{archive.name}: entry {name!r} has an absolute path; refused")
    if ".." in pure.parts:
        raise UnsafeArchive(f"{archive.name}: entry {name!r} escapes the folder ('..'); refused")
    return pure


def extract(archive: Path, dest: Path) -> Path:
    """Extract safely into ``dest``; returns the content folder (a lone top folder is
    unwrapped). Raises :class:`UnsafeArchive` for a hostile entry."""
    dest.mkdir(parents=True, exist_ok=True)
    name = archive.name.lower()
    try:
        if name.endswith(".zip"):
            _extract_zip(archive, dest)
        else:
            _extract_tar(archive, dest)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as e:
        raise SourceError(f"{archive.name} is not a readable archive: {e}") from e
    entries = [p for p in dest.iterdir() if p.name not in ("__MACOSX",)]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return dest


class _Budget:
    def __init__(self, archive: Path) -> None:
        self.archive = archive
        self.bytes = 0
        self.entries = 0

    def take(self, size: int) -> None:
        self.entries += 1
        self.bytes += size
        if self.entries > MAX_ENTRIES:
            raise UnsafeArchive(f"{self.archive.name} has more than {MAX_ENTRIES} entries")
        if self.bytes > MAX_EXTRACTED_BYTES:
            raise UnsafeArchive(
                f"{self.archive.name} unpacks to more than "
                f"{MAX_EXTRACTED_BYTES // (1024 * 1024)} MB"
            )


def _write(dest: Path, rel: PurePosixPath, data: IO[bytes], executable: bool) -> None:
    target = dest.joinpath(*rel.parts)
    if not target.resolve().is_relative_to(dest.resolve()):
        raise UnsafeArchive(f"entry {rel} escapes the folder; refused")
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        while chunk := data.read(1 << 16):
            out.write(chunk)
    target.chmod(0o755 if executable else 0o644)


def _extract_zip(archive: Path, dest: Path) -> None:
    budget = _Budget(archive)
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            rel = _entry_path(info.filename, archive)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise UnsafeArchive(
                    f"{archive.name}: entry {info.filename!r} is a symbolic link; refused"
                )
            budget.take(info.file_size)
            if info.is_dir():
                dest.joinpath(*rel.parts).mkdir(parents=True, exist_ok=True)
                continue
            with zf.open(info) as fh:
                _write(dest, rel, fh, bool(mode & 0o111))


def _extract_tar(archive: Path, dest: Path) -> None:
    budget = _Budget(archive)
    with tarfile.open(archive) as tf:
        for member in tf:
            rel = _entry_path(member.name, archive)
            if member.issym() or member.islnk():
                raise UnsafeArchive(f"{archive.name}: entry {member.name!r} is a link; refused")
            if not (member.isfile() or member.isdir()):
                raise UnsafeArchive(
                    f"{archive.name}: entry {member.name!r} is a device or pipe; refused"
                )
            budget.take(member.size)
            if member.isdir():
                dest.joinpath(*rel.parts).mkdir(parents=True, exist_ok=True)
                continue
            fh = tf.extractfile(member)
            if fh is None:
                continue
            with fh:
                _write(dest, rel, fh, bool(member.mode & 0o111))


def load_index(index: str) -> tuple[list[dict[str, Any]], str]:
    """The index's skill list and the base its relative sources resolve against."""
    if "://" in index:
        text = _read_url(index, 5 * 1024 * 1024).decode("utf-8", "replace")
        base = index
    else:
        path = Path(index).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise SourceError(f"cannot read the index {index}: {e}") from e
        base = str(path.resolve().parent) + os.sep
    try:
        data = json.loads(text)
    except ValueError as e:
        raise SourceError(f"the index {index} is not JSON: {e}") from e
    items = data.get("skills", data.get("panels")) if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise SourceError(f"the index {index} must hold a list under 'skills'")
    return [i for i in items if isinstance(i, dict)], base


def lookup(index: str, slug: str) -> IndexEntry:
    items, base = load_index(index)
    for item in items:
        if item.get("slug") != slug:
            continue
        source = item.get("source")
        files = item.get("sha256") or item.get("files")
        if not isinstance(source, str) or not isinstance(files, dict) or not files:
            raise SourceError(
                f"index entry {slug!r} needs a 'source' and 'sha256' (file → hash) for every file"
            )
        if "://" in base:
            resolved = urllib.parse.urljoin(base, source)
        elif "://" in source or Path(source).is_absolute() or source.startswith("git@"):
            resolved = source
        else:
            resolved = str(Path(base) / source)
        version = item.get("version")
        return IndexEntry(
            slug,
            resolved,
            None if version is None else str(version),
            {str(k): str(v).lower() for k, v in files.items()},
        )
    raise SourceError(f"no skill {slug!r} in the index {index}")


def check_index_hashes(folder: Path, expected: Mapping[str, str], slug: str) -> None:
    """Refuse unless ``folder`` holds exactly the files the index lists, byte for byte."""
    problems = []
    for rel, digest, got in compare_tree(expected, folder):
        if got is None:
            problems.append(f"{rel} is missing")
        elif digest is None:
            problems.append(f"{rel} is not listed in the index")
        else:
            problems.append(f"{rel} has sha256 {got[:12]}…, the index says {digest[:12]}…")
    if problems:
        raise IndexMismatch(
            f"{slug}: the downloaded files do not match the index; refused: " + "; ".join(problems)
        )
