"""What a skill says its calls do: the ``effects`` block of its frontmatter.

.. code-block:: yaml

    effects:
      default: []              # write | egress; [] = the call only reads
      untrusted_output: true   # the output may carry text someone else wrote
      confirm: false           # ask the user before every call
      rules:                   # first match wins; `when` maps input fields to values
        - {when: {action: [restart, stop]}, effects: [write], confirm: true}

A rule sets any of ``effects`` / ``untrusted_output`` / ``confirm``; what it leaves out
comes from the top level. A field matches when the input's value, as lower-case text
(``true``/``false`` for booleans), is one of the listed values.

Nexflow trusts this block only for the skills it ships (``skills/`` beside the package):
anyone can write "reads only" into a skill they publish, so any other skill is judged by
its permissions (:func:`nexflow.trust.effects.skill_effects`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

EffectName = Literal["write", "egress"]


@dataclass(frozen=True, slots=True)
class CallEffects:
    """What one call does, as the skill declares it."""

    writes: bool
    egress: bool
    untrusted_output: bool
    confirm: bool


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    when: dict[str, tuple[str, ...]] = Field(min_length=1)
    effects: tuple[EffectName, ...] | None = None
    untrusted_output: bool | None = None
    confirm: bool | None = None

    @field_validator("when", mode="before")
    @classmethod
    def _values(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        return {str(k): _as_texts(v) for k, v in value.items()}


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    default: tuple[EffectName, ...] = ()
    untrusted_output: bool = False
    confirm: bool = False
    rules: tuple[_Rule, ...] = ()


@dataclass(frozen=True, slots=True)
class DeclaredEffects:
    """The parsed ``effects`` block; :meth:`for_input` answers for one call."""

    block: _Block

    def for_input(self, payload: Mapping[str, Any]) -> CallEffects:
        top = self.block
        for rule in top.rules:
            if all(_text(payload.get(k)) in values for k, values in rule.when.items()):
                kinds = rule.effects if rule.effects is not None else top.default
                return CallEffects(
                    writes="write" in kinds,
                    egress="egress" in kinds,
                    untrusted_output=_pick(rule.untrusted_output, top.untrusted_output),
                    confirm=_pick(rule.confirm, top.confirm),
                )
        return CallEffects(
            "write" in top.default, "egress" in top.default, top.untrusted_output, top.confirm
        )


def parse_effects(raw: object) -> tuple[DeclaredEffects | None, str | None]:
    """``(effects, None)``, ``(None, None)`` when absent, or ``(None, error)``."""
    if raw is None:
        return None, None
    try:
        return DeclaredEffects(_Block.model_validate(raw)), None
    except ValidationError as e:
        where = "; ".join(
            f"effects.{'.'.join(str(p) for p in item['loc'])}: {item['msg']}"
            if item["loc"]
            else f"effects: {item['msg']}"
            for item in e.errors()
        )
        return None, where


def _as_texts(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_text(v) for v in value)
    return (_text(value),)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value).strip().lower()


def _pick(value: bool | None, default: bool) -> bool:
    return default if value is None else value
