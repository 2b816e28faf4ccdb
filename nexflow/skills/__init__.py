"""Skills: folders with a ``SKILL.md`` that teach the model or run a sandboxed program.

Pieces, wired by the composition root:

* :class:`SkillRegistry` loads skills from ordered roots (later roots override earlier
  ones) and watches them; every :class:`Skill` carries ``available`` and ``reason``.
* :func:`render_index` puts names and descriptions into the prompt within a budget.
* :class:`ReadSkillTool` and :class:`RunSkillTool` implement :class:`nexflow.tools.Tool`.
* :class:`SkillRunner` runs a skill's program under rlimits and the best isolation level
  (:func:`isolation_report` tells ``nexflow doctor`` which one).

Exceptions (``message`` is safe to show to users and the model)::

    SkillError
    ├── SkillNotFound           no skill by that name
    ├── SkillUnavailable        failed to load, unmet requirements, could not start
    ├── SkillPermissionDenied   a permission or a secret is not granted
    ├── SkillLocationError      location absolute, has '..', escapes via symlink, not runnable
    ├── SkillInputInvalid       input does not match the declared input schema
    ├── SkillOutputInvalid      output does not match the declared output schema
    └── SkillIsolationError     the requested isolation level is not possible here

A failed *run* (non-zero exit, timeout, output cap, invalid output) is not an exception:
it is a :class:`RunResult` with ``ok=False`` and an ``error``.
"""

from nexflow.skills.eligibility import HostContext
from nexflow.skills.errors import (
    SkillError,
    SkillInputInvalid,
    SkillIsolationError,
    SkillLocationError,
    SkillNotFound,
    SkillOutputInvalid,
    SkillPermissionDenied,
    SkillUnavailable,
)
from nexflow.skills.index import render_index
from nexflow.skills.isolation import IsolationLevel, IsolationReport, isolation_report
from nexflow.skills.limits import Limits
from nexflow.skills.loader import load_roots, load_skill, roots_from
from nexflow.skills.model import Permission, Requirements, Skill
from nexflow.skills.registry import SkillRegistry
from nexflow.skills.result import RunResult
from nexflow.skills.runner import SkillRunner
from nexflow.skills.tools import ReadSkillTool, RunSkillTool, SkillAudit, SkillAuditRecord

__all__ = [
    "HostContext",
    "IsolationLevel",
    "IsolationReport",
    "Limits",
    "Permission",
    "ReadSkillTool",
    "Requirements",
    "RunResult",
    "RunSkillTool",
    "Skill",
    "SkillAudit",
    "SkillAuditRecord",
    "SkillError",
    "SkillInputInvalid",
    "SkillIsolationError",
    "SkillLocationError",
    "SkillNotFound",
    "SkillOutputInvalid",
    "SkillPermissionDenied",
    "SkillRegistry",
    "SkillRunner",
    "SkillUnavailable",
    "isolation_report",
    "load_roots",
    "load_skill",
    "render_index",
    "roots_from",
]
