"""file-write: write or append a text (or base64) file inside the workspace.

Every path component is opened with O_NOFOLLOW relative to the previous directory's file
descriptor, so neither ``..`` nor a symlink (even one swapped in while we run) can lead
outside the workspace. ``.git`` is off limits: a hook or config written there would run
code on the next git command.
"""

import base64
import binascii
import json
import os
import stat
import sys

MAX_CONTENT = 1024 * 1024  # bytes per call
MAX_FILE = 8 * 1024 * 1024  # resulting file size for append
MODES = ("overwrite", "append", "create")
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Refused(Exception):
    pass


def parts_of(raw, root):
    if not isinstance(raw, str) or not raw.strip():
        raise Refused("'path' must be a non-empty string")
    if "\0" in raw:
        raise Refused("the path contains a NUL byte")
    path = raw.replace("\\", "/")
    if path.startswith("/"):
        prefix = root.rstrip("/") + "/"
        if not path.startswith(prefix):
            raise Refused(f"{raw!r} is outside the workspace")
        path = path[len(prefix) :]
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts:
        raise Refused(f"{raw!r} names the workspace itself, not a file")
    if ".." in parts:
        raise Refused(f"{raw!r} contains '..'; paths must stay inside the workspace")
    if ".git" in parts:
        raise Refused(f"{raw!r} is inside .git, which file-write does not touch")
    return parts


def open_parent(root_fd, dirs, make_dirs):
    fd = os.dup(root_fd)
    for name in dirs:
        try:
            nxt = os.open(name, DIR_FLAGS, dir_fd=fd)
        except FileNotFoundError:
            if not make_dirs:
                os.close(fd)
                raise Refused(f"folder {name!r} does not exist (set make_dirs)") from None
            os.mkdir(name, 0o755, dir_fd=fd)
            nxt = os.open(name, DIR_FLAGS, dir_fd=fd)
        except OSError as e:
            os.close(fd)
            raise Refused(f"{name!r} is a symlink or not a folder; refusing to follow it") from e
        os.close(fd)
        fd = nxt
    return fd


def existing(dir_fd, name):
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        raise Refused(f"{name!r} is a symlink; refusing to write through it")
    if not stat.S_ISREG(st.st_mode):
        raise Refused(f"{name!r} exists and is not a regular file")
    return st


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def replace(dir_fd, name, data, old):
    """Write a temp file and rename it over ``name``: atomic, and never writes through a
    hard link into a file that also lives outside the workspace."""
    tmp = f".{name}.nexflow-{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=dir_fd)
    try:
        write_all(fd, data)
        if old is not None:
            os.fchmod(fd, stat.S_IMODE(old.st_mode))
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp, dir_fd=dir_fd)
        raise
    os.close(fd)
    os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def append(dir_fd, name, data, old):
    if old is not None and old.st_nlink > 1:
        raise Refused(f"{name!r} has other hard links; refusing to append to a shared file")
    if old is not None and old.st_size + len(data) > MAX_FILE:
        raise Refused(f"appending would make {name!r} larger than {MAX_FILE // 1024 // 1024} MB")
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(name, flags, 0o644, dir_fd=dir_fd)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)


def payload(args):
    content = args.get("content")
    if not isinstance(content, str):
        raise Refused("'content' must be a string")
    encoding = args.get("encoding", "utf-8")
    if encoding == "utf-8":
        data = content.encode("utf-8")
    elif encoding == "base64":
        try:
            data = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise Refused("'content' is not valid base64") from None
    else:
        raise Refused("'encoding' must be 'utf-8' or 'base64'")
    if len(data) > MAX_CONTENT:
        raise Refused(f"content is {len(data)} bytes; the limit is {MAX_CONTENT} per call")
    return data


def main():
    try:
        args = json.load(sys.stdin)
        if not isinstance(args, dict):
            raise Refused("input must be a JSON object")
        mode = args.get("mode", "overwrite")
        if mode not in MODES:
            raise Refused(f"'mode' must be one of {', '.join(MODES)}")
        data = payload(args)
        root = os.getcwd()
        parts = parts_of(args.get("path"), root)
        root_fd = os.open(root, DIR_FLAGS)
        dir_fd = open_parent(root_fd, parts[:-1], bool(args.get("make_dirs", True)))
        os.close(root_fd)
        try:
            name = parts[-1]
            old = existing(dir_fd, name)
            if mode == "create" and old is not None:
                raise Refused(f"{'/'.join(parts)!r} already exists (mode 'create')")
            if mode == "append":
                append(dir_fd, name, data, old)
            else:
                replace(dir_fd, name, data, old)
            size = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_size
        finally:
            os.close(dir_fd)
    except Refused as e:
        print(f"file-write: {e}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:
        print(f"file-write: {getattr(e, 'strerror', None) or e}", file=sys.stderr)
        return 1
    out = {
        "path": "/".join(parts),
        "mode": mode,
        "bytes_written": len(data),
        "size": size,
        "created": old is None,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
