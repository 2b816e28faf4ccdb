import pytest

from nexflow.flows import ExprError
from nexflow.flows.expr import MAX_LEN, evaluate, find_interpolations, interpolate

SCOPE = {
    "inputs": {"n": 3, "name": "bob", "tags": ["a", "b"]},
    "nodes": {
        "fetch": {"output": {"failed_jobs": 2, "jobs": [{"id": 7}]}, "error": None},
        "bad": {"output": None, "error": "boom"},
    },
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("nodes.fetch.output.failed_jobs > 0", True),
        ("nodes.fetch.output.jobs[0].id + inputs.n", 10),
        ("nodes['fetch']['output']['failed_jobs'] * 2", 4),
        ("'failed: ' + nodes.bad.error", "failed: boom"),
        ("len(inputs.tags) == 2 and 'a' in inputs.tags", True),
        ("not nodes.fetch.error", True),
        ("nodes.missing.output", None),
        ("inputs.n % 2 == 1 or false", True),
        ("7 / 2", 3.5),
        ("-inputs.n", -3),
        ("'x' if inputs.n > 5 else 'y'", "y"),
        ("[1, 2, inputs.n]", [1, 2, 3]),
        ("{'k': inputs.name}", {"k": "bob"}),
        ("1 < inputs.n < 5", True),
        ("null == nodes.bad.output", True),
    ],
)
def test_evaluates(source: str, expected: object) -> None:
    assert evaluate(source, SCOPE) == expected


@pytest.mark.parametrize(
    "source",
    [
        "__import__('os').system('id')",
        "inputs.__class__",
        "inputs.__class__.__mro__[1].__subclasses__()",
        "nodes['__class__']",
        "open('/etc/passwd')",
        "(lambda: 1)()",
        "[x for x in inputs.tags]",
        "inputs.name.upper()",
        "2 ** 100000",
        "'a' * 10**9",
        "[0] * 10**9",
        "10**400",
        "len",
        "eval('1')",
        "x := 1",
        "inputs.tags[0:1]",
        "'%s' % inputs",
        "1 +",
        "f'{inputs}'",
        "[" * 60 + "]" * 60,
        "1" + " + 1" * 400,
        "99999999999999999999 * 99999999999999999999 * 99999999999999999999",
        "'a' + 'b' * 99999 + 'c' * 99999",
        "inputs.n > 'x'",
        "1 / 0",
        "nodes.fetch.output.jobs['id']",
    ],
)
def test_refuses_hostile_or_broken(source: str) -> None:
    with pytest.raises(ExprError):
        evaluate(source, SCOPE)


def test_error_messages_are_plain() -> None:
    with pytest.raises(ExprError, match="unknown name 'os'"):
        evaluate("os.system", SCOPE)
    with pytest.raises(ExprError, match="the only call allowed is len"):
        evaluate("min(1, 2)", SCOPE)


def test_interpolation_keeps_types_and_renders_text() -> None:
    args = {
        "id": "${inputs.n}",
        "text": "hi ${inputs.name}, ${nodes.fetch.output.jobs}",
        "nested": ["${nodes.bad.error}", 5, {"deep": "${inputs.tags}"}],
        "none": "x${nodes.bad.output}y",
    }
    assert interpolate(args, SCOPE) == {
        "id": 3,
        "text": 'hi bob, [{"id": 7}]',
        "nested": ["boom", 5, {"deep": ["a", "b"]}],
        "none": "xy",
    }
    assert find_interpolations(args) == [
        "inputs.n",
        "inputs.name",
        "nodes.fetch.output.jobs",
        "nodes.bad.error",
        "inputs.tags",
        "nodes.bad.output",
    ]


def test_interpolation_is_capped() -> None:
    big = {"inputs": {"s": "x" * (MAX_LEN // 2 + 1)}}
    with pytest.raises(ExprError):
        interpolate("${inputs.s}${inputs.s}", big)
