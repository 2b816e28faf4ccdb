"""Load ``config.yml``: YAML → ``${VAR}`` interpolation → environment overrides → model.

Every failure becomes a :class:`ConfigError` naming the bad key; no traceback reaches
the user.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

from nexflow.config.errors import ConfigError, ConfigProblem
from nexflow.config.model import NexflowConfig

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
ENV_SOURCE = "environment"


def load_config(
    path: Path | None = None, environ: Mapping[str, str] | None = None
) -> NexflowConfig:
    """Build the configuration from ``path`` (optional) and ``environ`` (default: os.environ)."""
    env = dict(os.environ if environ is None else environ)
    source = str(path) if path is not None else ENV_SOURCE
    raw: dict[str, Any] = _read_yaml(path) if path is not None else {}

    secrets_path = _secrets_path(raw, env)
    secrets = read_secrets_file(secrets_path) if secrets_path is not None else {}
    lookup = {**secrets, **env}

    problems: list[ConfigProblem] = []
    data = _interpolate(raw, lookup, "", problems)
    if problems:
        raise ConfigError(source, problems)
    _apply_shortcuts(data, lookup)
    try:
        return _build(data, env)
    except ValidationError as exc:
        raise ConfigError(source, [_problem(err) for err in exc.errors()]) from exc


def _build(data: dict[str, Any], env: Mapping[str, str]) -> NexflowConfig:
    """Validate ``data`` with overrides read from ``env`` (not from ``os.environ``)."""
    env_vars = parse_env_vars({k: v for k, v in env.items() if k.startswith("NEXFLOW_")})

    class _Bound(NexflowConfig):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            assert isinstance(env_settings, EnvSettingsSource)
            env_settings.env_vars = env_vars
            # Environment beats the YAML file (passed as init values); no .env magic.
            return (env_settings, init_settings)

    return _Bound(**data)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            str(path),
            [ConfigProblem("", "file not found", "copy config.example.yml to this path")],
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [ConfigProblem("", f"cannot read file: {exc}")]) from exc
    try:
        loaded = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise ConfigError(
            str(path),
            [
                ConfigProblem(
                    "",
                    f"YAML syntax error at {where}: {exc.problem}",
                    "check indentation and quote values that contain ':' or '#'",
                )
            ],
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [ConfigProblem("", f"YAML error: {exc}")]) from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(
            str(path),
            [
                ConfigProblem(
                    "", "the top level must be a mapping of sections", "see config.example.yml"
                )
            ],
        )
    return loaded


def _secrets_path(raw: Mapping[str, Any], env: Mapping[str, str]) -> Path | None:
    explicit = env.get("NEXFLOW_SECRETS_FILE") or raw.get("secrets_file")
    if explicit:
        return Path(str(explicit)).expanduser()
    home = Path(env.get("NEXFLOW_HOME") or raw.get("home") or "~/.nexflow").expanduser()
    default = home / "secrets.env"
    return default if default.exists() else None


def read_secrets_file(path: Path) -> dict[str, str]:
    """Read ``KEY=VALUE`` lines from a file only its owner can read."""
    source = f"secrets file {path}"
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise ConfigError(source, [ConfigProblem("secrets_file", "file not found")]) from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            source,
            [
                ConfigProblem(
                    "secrets_file",
                    f"permissions are {stat.filemode(mode)}; other users can read it",
                    f"chmod 600 {path}",
                )
            ],
        )
    secrets: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.removeprefix("export ").partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                source,
                [ConfigProblem(f"line {number}", "expected KEY=VALUE", "one secret per line")],
            )
        secrets[key.strip()] = value.strip().strip("'\"")
    return secrets


def _interpolate(
    node: Any, lookup: Mapping[str, str], path: str, problems: list[ConfigProblem]
) -> Any:
    if isinstance(node, dict):
        return {
            k: _interpolate(v, lookup, f"{path}.{k}" if path else str(k), problems)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_interpolate(v, lookup, f"{path}[{i}]", problems) for i, v in enumerate(node)]
    if not isinstance(node, str) or "${" not in node:
        return node

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in lookup:
            return lookup[name]
        if default is not None:
            return default
        problems.append(
            ConfigProblem(
                path,
                f"environment variable {name} is not set",
                f"export {name}=..., add it to the secrets file, or write ${{{name}:-default}}",
            )
        )
        return ""

    return _VAR.sub(substitute, node)


def _apply_shortcuts(data: dict[str, Any], env: Mapping[str, str]) -> None:
    """The documented short environment names: NEXFLOW_LLM_MODEL / _API_BASE / _API_KEY /
    _CLIENT and NEXFLOW_GATEWAY_TOKEN."""
    if token := env.get("NEXFLOW_GATEWAY_TOKEN"):
        data.setdefault("web", {})["token"] = token
    model = env.get("NEXFLOW_LLM_MODEL")
    if not model:
        return
    profile: dict[str, Any] = {"model": model}
    if base := env.get("NEXFLOW_LLM_API_BASE"):
        profile["api_base"] = base
    if key := env.get("NEXFLOW_LLM_API_KEY"):
        profile["api_key"] = key
    if client := env.get("NEXFLOW_LLM_CLIENT"):
        profile["client"] = client
    llm = data.setdefault("llm", {})
    llm["models"] = {"default": profile}
    llm["routes"] = {}
    llm["fallbacks"] = {}


M = TypeVar("M", bound=BaseModel)


def validate_section(
    model: type[M], section: Mapping[str, Any], prefix: str, source: str = "configuration"
) -> M:
    """Validate one section (e.g. a connector's) with the same errors as the whole file:
    each problem is named ``<prefix>.<key>`` and carries a hint."""
    try:
        return model.model_validate(dict(section))
    except ValidationError as exc:
        raise ConfigError(source, [_problem(err, prefix, model) for err in exc.errors()]) from exc


def _problem(
    err: Mapping[str, Any], prefix: str = "", root: type[BaseModel] = NexflowConfig
) -> ConfigProblem:
    loc = [str(p) for p in err.get("loc", ())]
    path = ".".join([prefix, *loc] if prefix else loc)
    kind = str(err.get("type", ""))
    message = str(err.get("msg", "invalid value"))
    hint = _HINTS.get(kind, "")
    if kind == "extra_forbidden" and loc:
        hint = _suggest(loc, root) or "remove it; see config.example.yml for the options"
        message = "unknown option"
    return ConfigProblem(path, message, hint)


def _suggest(loc: list[str], root: type[BaseModel]) -> str:
    model: type[BaseModel] = root
    for part in loc[:-1]:
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None) if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    close = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1)
    return f"did you mean {close[0]!r}?" if close else ""


_HINTS = {
    "int_parsing": "write a whole number",
    "float_parsing": "write a number",
    "bool_parsing": "write true or false",
    "literal_error": "use one of the values listed",
    "missing": "this option is required",
    "greater_than_equal": "the value is too small",
    "less_than_equal": "the value is too large",
    "greater_than": "the value must be larger",
    "dict_type": "write a mapping (key: value lines)",
    "list_type": "write a list ([a, b] or '- item' lines)",
}


def find_config_path(arg: str | None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The configuration file ``nexflow serve`` reads: ``--config``, else ``NEXFLOW_CONFIG``,
    else ``./config.yml`` or ``$NEXFLOW_HOME/config.yml`` when one exists, else None."""
    env = os.environ if environ is None else environ
    if arg:
        return Path(arg).expanduser()
    named = env.get("NEXFLOW_CONFIG")
    if named:
        return Path(named).expanduser()
    home = Path(env.get("NEXFLOW_HOME") or "~/.nexflow").expanduser()
    for candidate in (Path("config.yml"), home / "config.yml"):
        if candidate.is_file():
            return candidate
    return None
