"""Configuration errors that name the bad key and say how to fix it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    path: str
    message: str
    hint: str = ""

    def render(self) -> str:
        line = f"  {self.path or '<root>'}: {self.message}"
        if self.hint:
            line += f"\n      hint: {self.hint}"
        return line


class ConfigError(Exception):
    """The configuration cannot be used. ``source`` is the file (or "environment")."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        head = f"invalid configuration in {self.source}:"
        return "\n".join([head, *(p.render() for p in self.problems)])
