"""Read and change the configuration file the gateway was started with (GraphStudio's
settings page, ``/api/v1/settings``).

A change is a mapping of dotted keys (``budgets.per_user_daily_tokens``) to new values
(None removes the key, so its default applies). It is merged into the *raw* YAML — so
``${VAR}`` references elsewhere stay references — and the whole result is validated by
:func:`nexflow.config.load_config`, the start-up loader, before anything is written: a
bad value raises the same :class:`ConfigError` start-up would print and leaves the file
untouched. The file is replaced atomically (a temporary file in the same directory, then
``os.replace``) with its permissions kept. YAML comments are lost on a write (PyYAML does
not keep them).

What is shown back never contains a secret: every ``SecretStr`` field and every key that
looks like one (token, api_key, password, secret, authorization) is masked.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr

from nexflow.config.errors import ConfigError, ConfigProblem
from nexflow.config.loader import load_config
from nexflow.config.model import NexflowConfig

MASK = "***"
# Key names whose values are secrets even outside a SecretStr (connectors are free-form).
SECRET_KEY = re.compile(r"(^|_)(token|api_?key|secret|password|authorization)$", re.I)
# Keys whose new value the running gateway applies at once (the settings route does it);
# everything else is read at start-up and needs a restart.
LIVE_PREFIXES: tuple[str, ...] = ("logging.level", "logging.format", "skills.disabled")
_KEY = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """The file (None: the configuration came from the environment only) and the
    environment the gateway loaded its configuration with."""

    path: Path | None
    environ: Mapping[str, str] | None = field(default=None)

    def load(self) -> NexflowConfig:
        """The configuration as the next start would see it."""
        return load_config(self.path, self.environ)

    def raw(self) -> dict[str, Any]:
        """The file's YAML as written (``${VAR}`` not interpolated); {} when absent."""
        if self.path is None or not self.path.exists():
            return {}
        loaded = yaml.safe_load(self.path.read_text(encoding="utf-8"))
        return loaded if isinstance(loaded, dict) else {}

    def apply(self, changes: Mapping[str, Any]) -> NexflowConfig:
        """Merge ``changes`` into the file after validating the whole result; raise
        :class:`ConfigError` (the file untouched) when a key or value is refused."""
        if self.path is None:
            raise ConfigError(
                "environment",
                [
                    ConfigProblem(
                        "",
                        "the gateway was started without a configuration file",
                        "start it with --config <file> (or NEXFLOW_CONFIG) to edit settings",
                    )
                ],
            )
        data = merge(self.raw(), changes)
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".config-", suffix=".yml", dir=directory)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            with contextlib.suppress(FileNotFoundError):
                os.chmod(tmp, self.path.stat().st_mode & 0o7777)
            try:
                config = load_config(tmp, self.environ)
            except ConfigError as exc:  # name the real file, not the temporary one
                raise ConfigError(str(self.path), exc.problems) from None
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
        return config


def merge(raw: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``raw`` with each dotted key set (None: removed). A key that is not
    dotted words, or that goes through a value which is not a mapping, is a problem."""
    data: dict[str, Any] = yaml.safe_load(yaml.safe_dump(dict(raw))) or {}
    problems: list[ConfigProblem] = []
    for key, value in changes.items():
        if not _KEY.match(key):
            problems.append(
                ConfigProblem(key, "not a dotted key", "e.g. budgets.soft_warning_ratio")
            )
            continue
        parts = key.split(".")
        node: dict[str, Any] = data
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                if value is None:
                    break
                child = node[part] = {}
            if not isinstance(child, dict):
                where = ".".join(parts[: i + 1])
                problems.append(ConfigProblem(key, f"{where} is not a section"))
                break
            node = child
        else:
            if value is None:
                node.pop(parts[-1], None)
            else:
                node[parts[-1]] = value
    if problems:
        raise ConfigError("the requested changes", problems)
    return data


def masked(config: NexflowConfig) -> tuple[dict[str, Any], dict[str, bool]]:
    """The configuration as JSON with every secret replaced by ``"***"`` (None when not
    set), and each secret's dotted key → whether it is set."""
    secrets: dict[str, bool] = {}
    return _mask(config, "", secrets), secrets


def _mask(node: Any, path: str, secrets: dict[str, bool], secret: bool = False) -> Any:
    if isinstance(node, SecretStr) or (secret and node is not None and not isinstance(node, dict)):
        secrets[path] = True
        return MASK
    if isinstance(node, BaseModel):
        out: dict[str, Any] = {}
        for name, info in type(node).model_fields.items():
            value = getattr(node, name)
            child = f"{path}.{name}" if path else name
            if value is None and _secret_field(info.annotation):
                secrets[child] = False
            out[name] = _mask(value, child, secrets, bool(SECRET_KEY.search(name)))
        return out
    if isinstance(node, dict):
        return {
            str(k): _mask(v, f"{path}.{k}", secrets, secret or bool(SECRET_KEY.search(str(k))))
            for k, v in node.items()
        }
    if isinstance(node, list | tuple):
        return [_mask(v, f"{path}[{i}]", secrets, secret) for i, v in enumerate(node)]
    if isinstance(node, Path):
        return str(node)
    return node


def _secret_field(annotation: Any) -> bool:
    return "SecretStr" in str(annotation)


def needs_restart(keys: list[str]) -> list[str]:
    """The keys among ``keys`` the running gateway does not apply by itself."""
    return [k for k in keys if not any(k == p or k.startswith(p + ".") for p in LIVE_PREFIXES)]


def problems_text(exc: ConfigError) -> str:
    """The start-up loader's message without its first line (which names the file)."""
    return textwrap.dedent("\n".join(p.render() for p in exc.problems))
