"""Find skill folders under ordered roots and load each ``SKILL.md`` into a :class:`Skill`.

Loading never raises for a bad skill: the result is a :class:`Skill` with
``available=False`` and a ``reason`` naming the file (and line when known).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from nexflow.skills import manifest
from nexflow.skills.declared import parse_effects
from nexflow.skills.frontmatter import FrontmatterError, parse_document
from nexflow.skills.model import Skill
from nexflow.skills.schema import schema_from_body

log = logging.getLogger(__name__)

SKILL_FILES = ("SKILL.md", "skill.md")
DEFAULT_MAX_DEPTH = 6
_SKIP_DIRS = frozenset({".git", "node_modules", "__pycache__", ".venv", "venv"})


def iter_skill_files(root: Path, max_depth: int = DEFAULT_MAX_DEPTH) -> Iterator[Path]:
    """SKILL.md files under ``root``, sorted, at most ``max_depth`` folders deep.

    A folder holding a SKILL.md is a skill: its subfolders (references, templates) are
    not searched. Symlinked folders are not followed, so a link cannot loop the walk.
    """
    if not root.is_dir():
        return
    stack: list[tuple[Path, int]] = [(root, 0)]
    found: list[Path] = []
    while stack:
        folder, depth = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            log.warning("cannot list skill folder %s: %s", folder, e)
            continue
        names = {e.name for e in entries}
        skill_file = next((n for n in SKILL_FILES if n in names), None)
        if skill_file is not None:
            found.append(folder / skill_file)
            continue
        if depth >= max_depth:
            continue
        for entry in reversed(entries):
            if entry.name in _SKIP_DIRS or entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append((Path(entry.path), depth + 1))
    yield from sorted(found)


def load_skill(path: Path) -> Skill:
    """Load one SKILL.md. Problems become ``available=False`` with a precise reason."""
    folder_name = path.parent.name
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return _broken(path, folder_name, f"cannot read file: {e.__class__.__name__}: {e}")
    try:
        doc = parse_document(text)
    except FrontmatterError as e:
        where = f"{path}:{e.line}" if e.line else str(path)
        return _broken(path, folder_name, f"{where}: {e.message}", body=text)
    warnings: list[str] = []
    if doc.recovered:
        warnings.append(
            f"{path}: frontmatter is not strict YAML ({doc.recovered}); "
            "read with the OpenClaw-compatible line parser"
        )
    try:
        fm = manifest.Frontmatter.model_validate(doc.fields)
    except ValidationError as e:
        name = doc.fields.get("name")
        return _broken(
            path,
            name if isinstance(name, str) and name else folder_name,
            f"{path}: invalid frontmatter: {manifest.validation_message(e)}",
            body=doc.body,
        )
    return _build(path, fm, doc.body, warnings)


def _build(path: Path, fm: manifest.Frontmatter, body: str, warnings: list[str]) -> Skill:
    errors = manifest.identity_errors(fm.name, fm.description)
    warnings += manifest.identity_warnings(fm.name, fm.description)
    errors += manifest.permission_errors(fm.permissions)
    name = fm.name or path.parent.name
    if fm.name and fm.name != path.parent.name:
        warnings.append(
            f"name {fm.name!r} differs from its folder {path.parent.name!r}; "
            "the frontmatter name is used"
        )
    vendor = manifest.vendor_block(fm.metadata, warnings)
    agentskills = fm.metadata.get("agentskills")
    agentskills = agentskills if isinstance(agentskills, dict) else {}
    timeout, max_kb, limit_errors = manifest.limits_of(fm, vendor)
    errors += limit_errors
    declared, effects_error = parse_effects((fm.model_extra or {}).get("effects"))
    errors += [effects_error] if effects_error else []
    requirements = manifest.requirements_of(fm, vendor, warnings)
    input_schema = fm.input_schema or schema_from_body(body, "input")
    output_schema = fm.output_schema or schema_from_body(body, "output")
    always = fm.always if fm.always is not None else vendor.get("always") is True
    invocable = fm.user_invocable
    if invocable is None and isinstance(fm.metadata.get("user-invocable"), bool):
        invocable = fm.metadata["user-invocable"]
    skill = Skill(
        name=name,
        description=fm.description or "",
        source=path,
        body=body,
        emoji=fm.emoji or _text(vendor.get("emoji")),
        version=fm.version or _text(fm.metadata.get("version")) or _text(vendor.get("version")),
        author=fm.author or _text(fm.metadata.get("author")) or _text(vendor.get("author")),
        homepage=fm.homepage or _text(vendor.get("homepage")),
        license=fm.license,
        compatibility=fm.compatibility,
        location=fm.location,
        tags=fm.tags or manifest._get_list(agentskills, "tags"),
        category=fm.category or _text(agentskills.get("category")),
        permissions=frozenset(fm.permissions),
        env_required=requirements.env,
        env_optional=fm.env_optional,
        sockets=fm.sockets,
        primary_env=fm.primary_env or _text(vendor.get("primaryEnv")),
        timeout_sec=timeout,
        max_output_kb=max_kb,
        requirements=requirements,
        install=manifest.install_hints(vendor.get("install") or fm.install),
        input_schema=input_schema,
        output_schema=output_schema,
        allowed_tools=fm.allowed_tools,
        user_invocable=invocable if invocable is not None else True,
        model_invocable=not fm.disable_model_invocation,
        always=bool(always),
        metadata=fm.metadata,
        declared_effects=declared,
        warnings=tuple(warnings),
    )
    if errors:
        reason = f"{path}: " + "; ".join(errors)
        return _with_error(skill, reason)
    return skill


def _text(value: object) -> str | None:
    return manifest._opt_str(value) if isinstance(value, str | int | float) else None


def _with_error(skill: Skill, reason: str) -> Skill:
    return dataclasses.replace(skill, load_error=reason, available=False, reason=reason)


def _broken(path: Path, name: str, reason: str, body: str = "") -> Skill:
    return Skill(
        name=name,
        description="",
        source=path,
        body=body,
        load_error=reason,
        available=False,
        reason=reason,
    )


@dataclass(frozen=True, slots=True)
class LoadResult:
    """Winners by name (later roots override earlier ones) and the skills they shadowed."""

    skills: dict[str, Skill] = field(default_factory=dict)
    shadowed: tuple[tuple[Skill, Path], ...] = ()


def load_roots(roots: Sequence[Path], max_depth: int = DEFAULT_MAX_DEPTH) -> LoadResult:
    """Load every skill under ``roots`` in order.

    A later root overrides an earlier one (workspace over bundled). Within one root the
    first folder in sorted path order wins a name clash; the loser is recorded as shadowed.
    """
    winners: dict[str, Skill] = {}
    shadowed: list[tuple[Skill, Path]] = []
    for root in roots:
        this_root: dict[str, Skill] = {}
        for path in iter_skill_files(root, max_depth):
            skill = load_skill(path)
            if skill.name in this_root:
                shadowed.append((skill, this_root[skill.name].source))
                continue
            this_root[skill.name] = skill
        for name, skill in this_root.items():
            if name in winners:
                shadowed.append((winners[name], skill.source))
            winners[name] = skill
    return LoadResult(dict(sorted(winners.items())), tuple(shadowed))


def roots_from(
    bundled: Path | None, workspace: Path | None, extra: Iterable[Path] = (), env: str = ""
) -> list[Path]:
    """The ordered root list: bundled, extra dirs (config, then ``NEXFLOW_SKILLS_DIRS``),
    workspace last so it overrides everything."""
    roots: list[Path] = [bundled] if bundled else []
    roots += list(extra)
    roots += [Path(p) for p in env.split(os.pathsep) if p]
    if workspace is not None:
        roots.append(workspace)
    return roots
