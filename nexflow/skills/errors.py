"""The skills exception tree (documented in :mod:`nexflow.skills`)."""

from __future__ import annotations


class SkillError(Exception):
    """Base of every skills error. ``message`` is safe to show to the model and the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SkillNotFound(SkillError):
    """No skill is registered under that name."""


class SkillUnavailable(SkillError):
    """The skill is known but cannot run (load error, missing binary, env, OS...)."""


class SkillPermissionDenied(SkillError):
    """The caller lacks a permission the skill needs, or the user did not confirm."""


class SkillLocationError(SkillError):
    """``location`` is absolute, escapes the skill folder, or names no runnable file."""


class SkillInputInvalid(SkillError):
    """The input does not match the skill's declared input schema."""


class SkillOutputInvalid(SkillError):
    """The output does not match the skill's declared output schema."""


class SkillIsolationError(SkillError):
    """The requested isolation level cannot be set up on this host."""
