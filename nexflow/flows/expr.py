"""A small, safe expression language for flows, evaluated over Python's ``ast``.

Allowed: literals (str, int, float, bool, None, lists, tuples, dicts), the names
``inputs`` and ``nodes`` (plus ``true``/``false``/``null`` as YAML-ish aliases),
attribute and subscript access on dicts and lists (``nodes.fetch.output.jobs[0]``;
a missing key reads as ``None``), comparisons (``== != < <= > >= in not in``),
``and``/``or``/``not``, ``+ - * / %``, unary ``-``/``+``, ``a if c else b`` and the one
call ``len(x)``. Nothing else: no other calls, no lambdas or comprehensions, no names
starting with ``_`` and no attribute starting with ``_`` (no dunder escape), no ``**``.

Caps keep a hostile expression cheap: source length, AST size and depth, the length of
any string/list produced, and the magnitude of numbers. Evaluation is a single pass over
a bounded tree, so time is bounded too.

``${...}`` interpolation: :func:`interpolate` walks strings, lists and dicts; a string that
is exactly one ``${expr}`` keeps the value's type, otherwise values are rendered into the
text (JSON for lists/dicts, empty for ``None``).
"""

from __future__ import annotations

import ast
import json
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

from nexflow.flows.errors import ExprError

MAX_SOURCE = 2000
MAX_NODES = 300
MAX_DEPTH = 40
MAX_LEN = 100_000
MAX_INT = 10**30

_NAMES = frozenset({"inputs", "nodes"})
_ALIASES: dict[str, Any] = {"true": True, "false": False, "null": None}
_INTERP = re.compile(r"\$\{([^{}]*)\}")

_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
}
_CMPOPS: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}


def parse(source: str) -> ast.Expression:
    """Parse and check ``source``; raise :class:`ExprError` if it is refused."""
    if len(source) > MAX_SOURCE:
        raise ExprError(f"expression longer than {MAX_SOURCE} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as e:
        raise ExprError(f"expression syntax error: {e.msg}") from e
    call_names = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for count, node in enumerate(ast.walk(tree), start=1):
        if isinstance(node, ast.Name) and node.id == "len" and id(node) not in call_names:
            raise ExprError("'len' can only be called: len(x)")
        if count > MAX_NODES:
            raise ExprError(f"expression has more than {MAX_NODES} parts")
        _check_node(node)
    if _depth(tree) > MAX_DEPTH:
        raise ExprError(f"expression nested deeper than {MAX_DEPTH}")
    return tree


def _depth(node: ast.AST) -> int:
    stack = [(node, 1)]
    deepest = 0
    while stack:
        current, d = stack.pop()
        deepest = max(deepest, d)
        stack.extend((child, d + 1) for child in ast.iter_child_nodes(current))
    return deepest


_ALLOWED = (
    ast.Expression,
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.Attribute,
    ast.Subscript,
    ast.Compare,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.BinOp,
    ast.List,
    ast.Tuple,
    ast.Dict,
    ast.IfExp,
    ast.Call,
    *_BINOPS,
    *_CMPOPS,
)


def _check_node(node: ast.AST) -> None:
    if not isinstance(node, _ALLOWED):
        raise ExprError(f"'{type(node).__name__}' is not allowed in expressions")
    if isinstance(node, ast.Name) and node.id not in _NAMES and node.id not in _ALIASES:
        if node.id == "len":
            return
        raise ExprError(f"unknown name '{node.id}' (use inputs.* or nodes.*)")
    if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
        raise ExprError(f"attribute '{node.attr}' is not allowed")
    if isinstance(node, ast.Call) and not (
        isinstance(node.func, ast.Name)
        and node.func.id == "len"
        and len(node.args) == 1
        and not node.keywords
    ):
        raise ExprError("the only call allowed is len(x)")
    if isinstance(node, ast.Constant) and not isinstance(
        node.value, str | int | float | bool | type(None)
    ):
        raise ExprError("only string, number, boolean and null literals are allowed")


def evaluate(source: str, scope: Mapping[str, Any]) -> Any:
    """Evaluate ``source`` against ``scope`` (keys ``inputs`` and ``nodes``)."""
    tree = parse(source)
    return _Evaluator(scope).eval(tree.body)


def check(source: str) -> None:
    """Raise :class:`ExprError` if ``source`` would be refused (no evaluation)."""
    parse(source)


def find_interpolations(value: Any) -> list[str]:
    """Every ``${...}`` body inside ``value`` (strings, lists, dicts)."""
    if isinstance(value, str):
        return [m.group(1) for m in _INTERP.finditer(value)]
    if isinstance(value, list):
        return [e for item in value for e in find_interpolations(item)]
    if isinstance(value, dict):
        return [e for item in value.values() for e in find_interpolations(item)]
    return []


def interpolate(value: Any, scope: Mapping[str, Any]) -> Any:
    """Replace ``${expr}`` in strings within ``value``, recursively."""
    if isinstance(value, str):
        whole = _INTERP.fullmatch(value)
        if whole:
            return evaluate(whole.group(1), scope)
        text = _INTERP.sub(lambda m: _render(evaluate(m.group(1), scope)), value)
        _cap(text)
        return text
    if isinstance(value, list):
        return [interpolate(v, scope) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, scope) for k, v in value.items()}
    return value


def _render(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _cap(value: Any) -> Any:
    if isinstance(value, str | list | tuple | dict) and len(value) > MAX_LEN:
        raise ExprError(f"value longer than {MAX_LEN}")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        raise ExprError("number too large")
    return value


class _Evaluator:
    def __init__(self, scope: Mapping[str, Any]) -> None:
        self._scope = scope

    def eval(self, node: ast.expr) -> Any:  # noqa: PLR0912 - one branch per node kind
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in _ALIASES:
                return _ALIASES[node.id]
            return self._scope.get(node.id)
        if isinstance(node, ast.Attribute):
            return _lookup(self.eval(node.value), node.attr)
        if isinstance(node, ast.Subscript):
            if isinstance(node.slice, ast.Slice):
                raise ExprError("slices are not allowed")
            return _lookup(self.eval(node.value), self.eval(node.slice))
        if isinstance(node, ast.BoolOp):
            return self._boolop(node)
        if isinstance(node, ast.UnaryOp):
            operand = self.eval(node.operand)
            if isinstance(node.op, ast.Not):
                return not operand
            return self._arith(lambda a: -a if isinstance(node.op, ast.USub) else +a, operand)
        if isinstance(node, ast.BinOp):
            return self._binop(node)
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.IfExp):
            return self.eval(node.body) if self.eval(node.test) else self.eval(node.orelse)
        if isinstance(node, ast.List | ast.Tuple):
            return [self.eval(e) for e in node.elts]
        if isinstance(node, ast.Dict):
            if any(k is None for k in node.keys):
                raise ExprError("'**' in dict literals is not allowed")
            return {
                self.eval(k): self.eval(v) for k, v in zip(node.keys, node.values, strict=True) if k
            }
        if isinstance(node, ast.Call):
            arg = self.eval(node.args[0])
            if not isinstance(arg, str | list | dict | tuple):
                raise ExprError("len() needs a string, list or mapping")
            return len(arg)
        raise ExprError(f"'{type(node).__name__}' is not allowed in expressions")

    def _boolop(self, node: ast.BoolOp) -> Any:
        result: Any = None
        for value in node.values:
            result = self.eval(value)
            if isinstance(node.op, ast.And) and not result:
                return result
            if isinstance(node.op, ast.Or) and result:
                return result
        return result

    @staticmethod
    def _arith(fn: Callable[[Any], Any], operand: Any) -> Any:
        if not isinstance(operand, int | float) or isinstance(operand, bool):
            raise ExprError("unary minus/plus needs a number")
        return _cap(fn(operand))

    def _binop(self, node: ast.BinOp) -> Any:
        left, right = self.eval(node.left), self.eval(node.right)
        if isinstance(node.op, ast.Mult):
            for seq, n in ((left, right), (right, left)):
                too_long = isinstance(seq, str | list) and isinstance(n, int)
                if too_long and len(seq) * max(n, 0) > MAX_LEN:
                    raise ExprError(f"value longer than {MAX_LEN}")
        if isinstance(node.op, ast.Mod) and not isinstance(left, int | float):
            raise ExprError("'%' works on numbers only")
        fn = _BINOPS[type(node.op)]
        try:
            return _cap(fn(left, right))
        except ZeroDivisionError as e:
            raise ExprError("division by zero") from e
        except (TypeError, ValueError, OverflowError) as e:
            raise ExprError(
                f"cannot apply '{type(node.op).__name__}' to {_kind(left)} and {_kind(right)}"
            ) from e

    def _compare(self, node: ast.Compare) -> bool:
        left = self.eval(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self.eval(comparator)
            try:
                ok = bool(_CMPOPS[type(op)](left, right))
            except TypeError as e:
                raise ExprError(
                    f"cannot compare {_kind(left)} with {_kind(right)} using '{type(op).__name__}'"
                ) from e
            if not ok:
                return False
            left = right
        return True


def _lookup(container: Any, key: Any) -> Any:
    if isinstance(key, str) and key.startswith("_"):
        raise ExprError(f"key '{key}' is not allowed")
    if isinstance(container, Mapping):
        return container.get(key)
    if isinstance(container, list | str):
        if isinstance(key, int) and not isinstance(key, bool):
            try:
                return container[key]
            except IndexError:
                return None
        raise ExprError(f"index of a list must be a number, not {_kind(key)}")
    if container is None:
        return None
    raise ExprError(f"cannot read '{key}' from {_kind(container)}")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string"}.get(
        type(value), "list" if isinstance(value, list) else "mapping"
    )


def node_refs(source: str) -> set[str] | None:
    """The node ids ``source`` reads (``nodes.fetch``, ``nodes['fetch']``), or None when
    it reads ``nodes`` some other way (it may then read any node)."""
    tree = parse(source)
    found: set[str] = set()
    used: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_nodes(node.value):
            found.add(node.attr)
            used.add(id(node.value))
        elif isinstance(node, ast.Subscript) and _is_nodes(node.value):
            key = node.slice
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                return None
            found.add(key.value)
            used.add(id(node.value))
    loose = [n for n in ast.walk(tree) if _is_nodes(n) and id(n) not in used]
    return None if loose else found


def _is_nodes(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == "nodes"
