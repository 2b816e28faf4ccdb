"""file-read: print a workspace file (or a window of its lines) as one JSON object."""

import json
import sys
from pathlib import Path

MAX_BYTES = 200 * 1024


def main() -> int:
    args = json.load(sys.stdin)
    root = Path.cwd().resolve()
    target = (root / str(args["path"])).resolve()
    if not target.is_relative_to(root):
        print(f"file-read: {args['path']!r} is outside the workspace", file=sys.stderr)
        return 2
    if not target.is_file():
        print(f"file-read: {args['path']!r} is not a file", file=sys.stderr)
        return 2
    with target.open("rb") as fh:
        raw = fh.read(MAX_BYTES + 1)
    lines = raw[:MAX_BYTES].decode("utf-8", errors="replace").splitlines(keepends=True)
    start = max(int(args.get("start_line", 1)), 1) - 1
    count = int(args.get("max_lines", len(lines)))
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
