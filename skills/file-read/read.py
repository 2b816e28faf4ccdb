"""file-read: print a workspace file (or a window of its lines) as one JSON object."""

import json
import sys
from pathlib import Path

MAX_BYTES = 200 * 1024


def fail(message: str) -> int:
    print(f"file-read: {message}", file=sys.stderr)
    return 2


def main() -> int:
    try:
        args = json.load(sys.stdin)
    except ValueError:
        return fail("the input is not JSON")
    if not isinstance(args, dict) or not isinstance(args.get("path"), str):
        return fail('the input needs "path", a string')
    path = args["path"]
    shown = repr(path) if len(path) <= 200 else repr(path[:200]) + "..."
    if "\0" in path:
        return fail(f"{shown} is not a valid path (it contains a NUL byte)")
    for key in ("start_line", "max_lines"):
        if not isinstance(args.get(key, 0), int) or isinstance(args.get(key), bool):
            return fail(f'"{key}" must be a whole number')
    root = Path.cwd().resolve()
    try:
        target = (root / path).resolve()
        if not target.is_relative_to(root):
            return fail(f"{shown} is outside the workspace")
        if not target.is_file():
            return fail(f"{shown} is not a file")
        with target.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except (OSError, ValueError) as exc:  # too long, unreadable, a loop of links...
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return fail(f"cannot read {shown}: {reason}")
    lines = raw[:MAX_BYTES].decode("utf-8", errors="replace").splitlines(keepends=True)
    start = max(args.get("start_line", 1), 1) - 1
    count = max(args.get("max_lines", len(lines)), 0)
    window = lines[start : start + count]
    truncated = len(raw) > MAX_BYTES or start + count < len(lines)
    out = {
        "path": str(target.relative_to(root)),
        "content": "".join(window),
        "truncated": truncated,
        "total_lines": len(lines),
    }
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
