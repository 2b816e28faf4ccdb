"""The conventions every bundled skill program follows, in one place (standard library only).

A bundled skill's program reads its input as a JSON object on stdin, prints one JSON value
on stdout and exits 0; a refusal (input or policy says no) exits 2 and a failure (the
service or the command did not succeed) exits 1, each with a one-line reason on stderr
that the gateway shows the user. Bundled programs import this module with::

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))
    import skillkit

(``skills/_lib`` is not a skill: it has no SKILL.md, so the loader passes it by.)
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeVar

T = TypeVar("T")


class Refused(Exception):
    """The request is not allowed or the input is wrong (exit 2)."""


class Failed(Exception):
    """The request was allowed but did not succeed (exit 1)."""


def read_input() -> dict[str, Any]:
    """The input object: stdin, else ``SKILL_INPUT``; ``Refused`` when it is not an object."""
    text = sys.stdin.read() if not sys.stdin.isatty() else ""
    if not text.strip():
        text = os.environ.get("SKILL_INPUT", "") or "{}"
    try:
        value = json.loads(text)
    except ValueError as e:
        raise Refused(f"input is not JSON: {e}") from None
    if not isinstance(value, dict):
        raise Refused("input must be a JSON object")
    return value


def env(name: str, default: str | None = None) -> str:
    """A setting the admin granted to this skill; ``Refused`` naming it when unset."""
    value = os.environ.get(name, "").strip() or default
    if value is None:
        raise Refused(f"{name} is not set: the admin grants it in config (skills.secrets)")
    return value


def positive_int(
    args: Mapping[str, Any], key: str, default: int | None = None, *, most: int | None = None
) -> int:
    """``args[key]`` (``default`` when absent) as a positive integer, at most ``most``;
    ``Refused`` naming the key otherwise."""
    value = args.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise Refused(f"'{key}' must be a positive integer")
    return value if most is None else min(value, most)


def positive_number(args: Mapping[str, Any], key: str, default: float, *, most: float) -> float:
    """``args[key]`` (``default`` when absent) as a positive number, at most ``most``."""
    value = args.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise Refused(f"'{key}' must be a positive number")
    return min(float(value), most)


def action_of(
    args: Mapping[str, Any], actions: Mapping[str, T], default: str | None = None
) -> tuple[str, T]:
    """The ``action`` named in the input (``default`` when absent) and its handler."""
    action = args.get("action", default)
    handler = actions.get(action) if isinstance(action, str) else None
    if handler is None:
        raise Refused(f"'action' must be one of: {', '.join(actions)}")
    return str(action), handler


def main(name: str, run: Callable[[dict[str, Any]], Any]) -> NoReturn:
    """Run ``run(input)`` and exit by the conventions above; prints its result as JSON."""
    try:
        result = run(read_input())
    except Refused as e:
        _die(name, "refused", e, 2)
    except TimeoutError as e:
        _die(name, "timed out", e or "no answer in time", 1)
    except (Failed, OSError, ValueError) as e:
        _die(name, "failed", e, 1)
    print(json.dumps(result, ensure_ascii=False))
    sys.stdout.flush()
    sys.exit(0)


def _die(name: str, what: str, reason: object, code: int) -> NoReturn:
    print(f"{name}: {what}: {reason}", file=sys.stderr)
    sys.exit(code)
