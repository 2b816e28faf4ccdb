"""Channel settings (bot tokens, allow lists) into Nexflow's config, secrets kept apart.

A token goes into the secrets file (``secrets.env``, owner-only, ``KEY=VALUE`` lines read
by ``nexflow/config/loader.py``) and ``config.yml`` gets ``connectors.<channel>.bot_token:
"${KEY}"``; a token is never written into the config. An allow list of numeric user ids
becomes ``security.channels.<channel>: {policy: allowlist, allow: [...]}``. Nothing that
exists is overwritten: a different section already in ``config.yml`` or a different value
under the same secret name is reported as a conflict and kept. Usernames (``@name``)
cannot be matched (senders are known by id) and ``*`` (anyone) is not carried over:
Nexflow's default, pairing, applies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nexflow.config.errors import ConfigError
from nexflow.config.loader import read_secrets_file
from nexflow.importers import yamlpatch
from nexflow.importers.errors import ConfigPatchError, ImporterError
from nexflow.importers.model import ChannelSetting, ReportRow, SourceHome, Status
from nexflow.importers.writes import Writer

SUPPORTED = {"telegram": "TELEGRAM_BOT_TOKEN", "discord": "DISCORD_BOT_TOKEN"}
_NUMERIC = re.compile(r"^-?\d{1,20}$")
CONFIG_HEADER = "# Nexflow configuration (every option: config.example.yml)\n"


@dataclass(frozen=True, slots=True)
class ConfigFiles:
    config: Path
    secrets: Path


def import_channels(source: SourceHome, files: ConfigFiles, writer: Writer) -> list[ReportRow]:
    rows: list[ReportRow] = []
    for setting in source.channels:
        if (skip := _skip_reason(setting)) is not None:
            where = f"{source.rel(setting.source)} {setting.key}"
            rows.append(ReportRow("channel", setting.channel, where, "-", "skipped", skip))
            continue
        rows.append(_token(source, setting, files, writer))
        rows.extend(_allowlist(source, setting, files, writer))
    return rows


def _skip_reason(setting: ChannelSetting) -> str | None:
    if not setting.enabled:
        return "disabled in the source"
    if setting.channel not in SUPPORTED:
        return f"Nexflow has no {setting.channel} connector"
    return None


def _token(
    source: SourceHome, setting: ChannelSetting, files: ConfigFiles, writer: Writer
) -> ReportRow:
    where = f"{source.rel(setting.source)} {setting.key}"
    section_path = ["connectors", setting.channel]

    def row(
        status: Status, reason: str = "", dest: str = "", details: tuple[str, ...] = ()
    ) -> ReportRow:
        shown = dest or f"{writer.show(files.config)} connectors.{setting.channel}"
        return ReportRow(
            "channel", f"{setting.channel} bot token", where, shown, status, reason, details
        )

    if not setting.token:
        return row("skipped", "no bot token found")
    try:
        current_secrets = _read_secrets(files.secrets, writer)
        config = _read_config(files.config, writer)
    except _Unreadable as e:
        return row("failed", e.message)
    name = SUPPORTED[setting.channel]
    for candidate in (name, f"{name}_{source.tool.upper()}"):
        if current_secrets.get(candidate, setting.token) == setting.token:
            name = candidate
            break
    else:
        return row("conflict", f"{files.secrets.name} already has different {name} values")
    wanted = {"bot_token": f"${{{name}}}"}
    existing = _at(config.data, section_path)
    if existing is not None and existing != wanted:
        return row(
            "conflict",
            f"connectors.{setting.channel} is already configured; kept yours",
            details=(
                f"to use the imported bot instead, put {name}=<the token from {where}> "
                f"in {files.secrets.name} and set connectors.{setting.channel}.bot_token "
                f'to "${{{name}}}"',
            ),
        )
    new_config = None
    if existing is None:
        try:
            new_config = yamlpatch.add_mapping(config.text or CONFIG_HEADER, section_path, wanted)
        except ConfigPatchError as e:
            if name not in current_secrets:  # so the snippet below works as it is
                _write_secret(files.secrets, writer, name, setting.token)
            return row(
                "conflict",
                f"{e.message}; the token is in {files.secrets.name} as {name}",
                details=_by_hand(section_path, wanted),
            )
    if name in current_secrets and new_config is None:
        return row("unchanged")
    if name not in current_secrets:
        _write_secret(files.secrets, writer, name, setting.token)
    if new_config is not None:
        writer.write(files.config, new_config)
    dest = (
        f"{writer.show(files.secrets)} {name} + "
        f"{writer.show(files.config)} connectors.{setting.channel}"
    )
    return row("would import" if writer.dry_run else "imported", dest=dest)


def _allowlist(
    source: SourceHome, setting: ChannelSetting, files: ConfigFiles, writer: Writer
) -> list[ReportRow]:
    where = f"{source.rel(setting.source)} {setting.allow_key or setting.key}"
    path = ["security", "channels", setting.channel]
    shown = f"{writer.show(files.config)} security.channels.{setting.channel}"
    rows: list[ReportRow] = []
    ids = [a for a in setting.allow if _NUMERIC.match(a)]
    others = [a for a in setting.allow if not _NUMERIC.match(a)]
    if "*" in others:
        rows.append(
            ReportRow(
                "allowlist",
                f"{setting.channel} '*'",
                where,
                shown,
                "skipped",
                "open to anyone is not carried over; Nexflow's pairing applies",
            )
        )
    names = [a for a in others if a != "*"]
    if names:
        rows.append(
            ReportRow(
                "allowlist",
                f"{setting.channel} {', '.join(names)}",
                where,
                shown,
                "skipped",
                "usernames cannot be matched; Nexflow knows senders by numeric id",
            )
        )
    if not ids:
        return rows
    wanted = {"policy": "allowlist", "allow": ids}
    item = f"{setting.channel} allow list ({len(ids)} ids)"
    try:
        config = _read_config(files.config, writer)
    except _Unreadable as e:
        return [*rows, ReportRow("allowlist", item, where, shown, "failed", e.message)]
    existing = _at(config.data, path)
    if existing is not None:
        if existing == wanted:
            return [*rows, ReportRow("allowlist", item, where, shown, "unchanged")]
        return [
            *rows,
            ReportRow(
                "allowlist",
                item,
                where,
                shown,
                "conflict",
                f"security.channels.{setting.channel} is already set; kept yours",
                _by_hand(path, wanted),
            ),
        ]
    try:
        new_config = yamlpatch.add_mapping(config.text or CONFIG_HEADER, path, wanted)
    except ConfigPatchError as e:
        return [
            *rows,
            ReportRow(
                "allowlist", item, where, shown, "conflict", e.message, _by_hand(path, wanted)
            ),
        ]
    writer.write(files.config, new_config)
    status: Status = "would import" if writer.dry_run else "imported"
    return [*rows, ReportRow("allowlist", item, where, shown, status)]


class _Unreadable(ImporterError):
    """The Nexflow config or secrets file cannot be used as it is (a row, not a crash)."""


@dataclass(frozen=True, slots=True)
class _Config:
    text: str
    data: Mapping[str, Any]


def _read_config(path: Path, writer: Writer) -> _Config:
    try:
        text = writer.read(path)
        data = yaml.safe_load(text) if text.strip() else {}
    except (OSError, UnicodeDecodeError) as e:
        raise _Unreadable(
            f"cannot read {path.name}: {getattr(e, 'strerror', None) or 'not UTF-8'}"
        ) from e
    except yaml.YAMLError as e:
        raise _Unreadable(f"{path.name} is not valid YAML; fix it first") from e
    if not isinstance(data, dict):
        raise _Unreadable(f"the top level of {path.name} is not a mapping")
    return _Config(text, data)


def _read_secrets(path: Path, writer: Writer) -> dict[str, str]:
    try:
        text = writer.read(path)
    except (OSError, UnicodeDecodeError) as e:
        raise _Unreadable(f"cannot read {path.name}") from e
    if not text:
        return {}
    if path.exists():
        try:
            read_secrets_file(path)  # the loader's own checks: owner-only, KEY=VALUE lines
        except ConfigError as e:
            hint = e.problems[0].hint if e.problems else ""
            raise _Unreadable(
                f"{path.name}: {e.problems[0].message if e.problems else 'unusable'}"
                + (f" ({hint})" if hint else "")
            ) from e
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().removeprefix("export ").partition("=")
        if sep and key.strip() and not key.startswith("#"):
            values[key.strip()] = value.strip().strip("'\"")
    return values


def _write_secret(path: Path, writer: Writer, name: str, value: str) -> None:
    text = writer.read(path)
    if text and not text.endswith("\n"):
        text += "\n"
    writer.write(path, f"{text}{name}={value}\n", private=True)


def _at(data: Mapping[str, Any], path: list[str]) -> Any:
    node: Any = data
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node if node is not None else None


def _by_hand(path: list[str], value: Mapping[str, Any]) -> tuple[str, ...]:
    return ("add this to config.yml by hand:", *yamlpatch.snippet(path, value).splitlines())
