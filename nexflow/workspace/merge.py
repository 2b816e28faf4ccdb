"""Rebasing a patch onto a ``main`` that moved: a three-way merge per file.

For every file the patch changed, ``base`` is the file when the patch was made, ``ours``
is ``main`` now and ``theirs`` is the patch. Unchanged on ``main``: the patch's version
wins. Panel state files (``*.state.json``) merge key by key: a key both sides changed to
different values is a collision. Other text merges line by line (``git merge-file``);
overlapping edits, or a delete against an edit, are a collision. Any collision means the
patch is in ``conflict`` and nothing is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nexflow.workspace.layout import dump_state, load_state

TextMerge = Callable[[str, str, str], str | None]


@dataclass(frozen=True, slots=True)
class Rebased:
    files: dict[str, str | None]  # the patch's files on top of the new main
    collisions: tuple[str, ...]  # "panels/todo.state.json: key items", ...


def _merge_state(path: str, base: str, ours: str, theirs: str) -> tuple[str | None, list[str]]:
    try:
        b, o, t = load_state(base), load_state(ours), load_state(theirs)
    except json.JSONDecodeError:
        return None, [f"{path}: not valid JSON on one side"]
    out: dict[str, Any] = {}
    clashes: list[str] = []
    for key in dict.fromkeys([*o, *t, *b]):
        bv, ov, tv = b.get(key, _MISSING), o.get(key, _MISSING), t.get(key, _MISSING)
        if tv == bv:
            value = ov
        elif ov in (bv, tv):
            value = tv
        else:
            clashes.append(key)
            continue
        if value is not _MISSING:
            out[key] = value
    if clashes:
        return None, [f"{path}: state key(s) {', '.join(clashes)} changed on main meanwhile"]
    return dump_state(out), []


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


def rebase_files(
    base: Mapping[str, str | None],
    ours: Mapping[str, str | None],
    theirs: Mapping[str, str | None],
    merge_text: TextMerge,
) -> Rebased:
    """Merge each path of ``theirs`` (the patch's changed files) onto ``ours``."""
    files: dict[str, str | None] = {}
    collisions: list[str] = []
    for path, t in theirs.items():
        b, o = base.get(path), ours.get(path)
        if o in (b, t):
            files[path] = t
        elif t is None or o is None or b is None:
            collisions.append(f"{path}: deleted on one side and changed on the other")
        elif path.endswith(".state.json"):
            merged, clashes = _merge_state(path, b, o, t)
            collisions += clashes
            files[path] = merged
        else:
            text = merge_text(b, o, t)
            if text is None:
                collisions.append(f"{path}: overlapping edits on main and in the patch")
            files[path] = text
    return Rebased(files if not collisions else {}, tuple(collisions))
