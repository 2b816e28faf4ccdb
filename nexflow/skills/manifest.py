"""Frontmatter (validated at the edge with pydantic) → :class:`~nexflow.skills.model.Skill`.

Dialects folded together, first match wins per key:

* top level: Agent Skills (``name, description, license, compatibility, metadata,
  allowed-tools``) and the PRD (``emoji, version, author, homepage, location, tags,
  category, permissions, env_required, requirements.{binaries,files,env}``);
* the vendor block ``metadata.{nanobot, openclaw, clawdbot, clawdis, moltbot, clawdhub}``
  (JSON string or mapping) with ``emoji, requires.{bins,anyBins,env,config}, os, install,
  primaryEnv, always``; the same keys at the top level or directly under ``metadata``;
* ``metadata.timeoutSec`` / ``metadata.maxOutputKb`` (PRD), ``metadata.agentskills``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from nexflow.skills.model import (
    DEFAULT_MAX_OUTPUT_KB,
    DEFAULT_TIMEOUT_SEC,
    KNOWN_PERMISSIONS,
    InstallHint,
    Requirements,
)

VENDOR_KEYS = ("nanobot", "openclaw", "clawdbot", "clawdis", "moltbot", "clawdhub")
NAME_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
MAX_NAME = 64
MAX_DESCRIPTION = 1024


def _opt_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float | dt.date):
        text = str(value).strip()
        return text or None
    raise ValueError(f"expected text, got {type(value).__name__}")


def _str_list(value: Any) -> tuple[str, ...]:
    if value is None or value is False:
        return ()
    if isinstance(value, str):
        parts = value.split(",") if "," in value else value.split()
        return tuple(p.strip() for p in parts if p.strip())
    if isinstance(value, list | tuple):
        return tuple(str(v).strip() for v in value if v is not None and str(v).strip())
    raise ValueError(f"expected a list of strings, got {type(value).__name__}")


def _mapping(value: Any) -> dict[str, Any]:
    """A mapping, or a JSON / YAML string holding one (OpenClaw re-parses with JSON5)."""
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            try:
                parsed = yaml.safe_load(value)
            except yaml.YAMLError:
                raise ValueError("is a string that is neither JSON nor YAML") from None
        if isinstance(parsed, dict):
            return {str(k): v for k, v in parsed.items()}
    raise ValueError(f"expected a mapping, got {type(value).__name__}")


OptStr = Annotated[str | None, BeforeValidator(_opt_str)]
StrList = Annotated[tuple[str, ...], BeforeValidator(_str_list)]
Mapped = Annotated[dict[str, Any], BeforeValidator(_mapping)]


class Frontmatter(BaseModel):
    """The frontmatter keys Nexflow reads; unknown keys are kept but ignored."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    name: OptStr = None
    description: OptStr = None
    emoji: OptStr = None
    version: OptStr = None
    author: OptStr = None
    homepage: OptStr = None
    license: OptStr = None
    compatibility: OptStr = None
    location: OptStr = None
    category: OptStr = None
    tags: StrList = ()
    permissions: StrList = ()
    env_required: Any = None
    env_optional: StrList = ()
    sockets: StrList = ()
    allowed_tools: StrList = Field((), alias="allowed-tools")
    user_invocable: bool | None = Field(None, alias="user-invocable")
    disable_model_invocation: bool | None = Field(None, alias="disable-model-invocation")
    always: bool | None = None
    metadata: Mapped = Field(default_factory=dict)
    requirements: Mapped = Field(default_factory=dict)
    requires: Any = None
    install: Any = None
    os: StrList = ()
    primary_env: OptStr = Field(None, alias="primaryEnv")
    config: Any = None
    input_schema: Mapped = Field(default_factory=dict, alias="inputSchema")
    output_schema: Mapped = Field(default_factory=dict, alias="outputSchema")


def validation_message(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "frontmatter"
        parts.append(f"{where}: {item['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def vendor_block(metadata: Mapping[str, Any], warnings: list[str]) -> dict[str, Any]:
    """Merge the vendor blocks in priority order; a key from an earlier block wins."""
    merged: dict[str, Any] = {}
    for key in VENDOR_KEYS:
        if key not in metadata:
            continue
        try:
            block = _mapping(metadata[key])
        except ValueError as e:
            warnings.append(f"metadata.{key} {e}; ignored")
            continue
        for k, v in block.items():
            merged.setdefault(k, v)
    return merged


def _get_list(source: Any, key: str) -> tuple[str, ...]:
    if not isinstance(source, Mapping):
        return ()
    try:
        return _str_list(source.get(key))
    except ValueError:
        return ()


def _union(*groups: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for group in groups:
        for item in group:
            seen.setdefault(item, None)
    return tuple(seen)


def requirements_of(
    fm: Frontmatter, vendor: Mapping[str, Any], warnings: list[str]
) -> Requirements:
    prd = fm.requirements
    top = fm.requires
    if isinstance(top, list):
        warnings.append("top-level 'requires' lists skill dependencies, which are not supported")
        top = None
    direct = fm.metadata.get("requires")
    req_blocks = [vendor.get("requires"), top, direct]
    env_required = fm.env_required if isinstance(fm.env_required, list | str) else None
    config = fm.config if isinstance(fm.config, Mapping) else {}
    return Requirements(
        bins=_union(
            _get_list(prd, "binaries"),
            _get_list(prd, "bins"),
            *(_get_list(b, "bins") for b in req_blocks),
        ),
        any_bins=_union(*(_get_list(b, "anyBins") for b in req_blocks)),
        env=_union(
            _get_list(prd, "env"),
            _str_list(env_required) if env_required is not None else (),
            _get_list(config, "requiredEnv"),
            *(_get_list(b, "env") for b in req_blocks),
        ),
        files=_get_list(prd, "files"),
        os=_union(fm.os, _get_list(vendor, "os"), _get_list(prd, "os")),
        config=_union(*(_get_list(b, "config") for b in req_blocks)),
    )


def install_hints(raw: Any) -> tuple[InstallHint, ...]:
    if not isinstance(raw, list):
        return ()
    hints = []
    for entry in raw:
        if not isinstance(entry, Mapping):
            continue
        package = (
            entry.get("formula")
            or entry.get("package")
            or entry.get("module")
            or entry.get("url")
            or entry.get("cmd")
            or entry.get("command")
            or entry.get("instructions")
            or ""
        )
        hints.append(
            InstallHint(
                kind=str(entry.get("kind") or entry.get("type") or "manual"),
                label=str(entry.get("label") or ""),
                package=str(package),
                bins=_get_list(entry, "bins"),
                os=_get_list(entry, "os"),
            )
        )
    return tuple(hints)


def number(
    sources: Iterable[Mapping[str, Any]], keys: tuple[str, ...], default: float
) -> tuple[float, str | None]:
    """First positive number under any of ``keys``; an error text for a bad value."""
    for source in sources:
        for key in keys:
            if key not in source:
                continue
            value = source[key]
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                return default, f"metadata.{key} must be a positive number"
            try:
                parsed = float(value)
            except ValueError:
                return default, f"metadata.{key} must be a positive number, got {value!r}"
            if parsed <= 0:
                return default, f"metadata.{key} must be a positive number, got {value!r}"
            return parsed, None
    return default, None


def limits_of(fm: Frontmatter, vendor: Mapping[str, Any]) -> tuple[float, int, list[str]]:
    sources = (fm.metadata, vendor)
    errors = []
    timeout, err = number(sources, ("timeoutSec", "timeout_sec"), DEFAULT_TIMEOUT_SEC)
    if err:
        errors.append(err)
    max_kb, err = number(sources, ("maxOutputKb", "max_output_kb"), DEFAULT_MAX_OUTPUT_KB)
    if err:
        errors.append(err)
    return timeout, int(max_kb), errors


def identity_errors(name: str | None, description: str | None) -> list[str]:
    """What refuses a skill: no ``name``, a name with control characters, no description.

    Breaking the Agent Skills style rules (see :func:`identity_warnings`) does not refuse:
    real skills use capitals, spaces and long descriptions, and other clients load them.
    """
    errors = []
    if not name:
        errors.append("frontmatter has no 'name'")
    elif any(not ch.isprintable() for ch in name):
        errors.append(f"name {name!r} contains control characters")
    if not description:
        errors.append("frontmatter has no 'description' (required, 1-1024 characters)")
    return errors


def identity_warnings(name: str | None, description: str | None) -> list[str]:
    """Agent Skills style rules a skill breaks; it still loads, its name kept verbatim."""
    warnings = []
    if name and len(name) > MAX_NAME:
        warnings.append(f"name is {len(name)} characters; Agent Skills allows {MAX_NAME}")
    elif name and not NAME_RE.match(name):
        warnings.append(
            f"name {name!r} is not lowercase a-z, 0-9 and single hyphens (Agent Skills "
            "style); loaded with the name as written"
        )
    if description and len(description) > MAX_DESCRIPTION:
        warnings.append(
            f"description is {len(description)} characters; Agent Skills allows "
            f"{MAX_DESCRIPTION} (the prompt index shortens it)"
        )
    return warnings


def permission_errors(permissions: Iterable[str]) -> list[str]:
    unknown = sorted(set(permissions) - KNOWN_PERMISSIONS)
    if not unknown:
        return []
    known = ", ".join(sorted(KNOWN_PERMISSIONS))
    return [f"unknown permission(s) {', '.join(unknown)} (known: {known})"]
