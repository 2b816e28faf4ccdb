"""A tool call in plain words, for the people watching a turn (``tool_call`` frames, the
chat timeline): ``To-do: add item “milk”`` instead of ``ad3c87de__main__todo__add_item``
and its JSON arguments.

A label is ``<what>: <action> <the most telling argument>`` in the session's language
(English or Russian). Panel tools (``<user>__<workspace>__<panel>__<tool>``, see
:mod:`nexflow.panels.runtime.tools`) take the panel's title from their spec's
description; built-in tools have their own words here; anything else (an MCP tool
``server__tool``, a skill's) is its name made readable. Never raw JSON: an argument is
shown only when it is a short string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from nexflow.tools.base import ToolSpec

# Built-in tools: (English, Russian) of "<what>: <action>".
_BUILTIN: dict[str, tuple[str, str]] = {
    "memory_save": ("Memory: save", "Память: сохранить"),
    "memory_search": ("Memory: search", "Память: поиск"),
    "memory_get": ("Memory: read", "Память: прочитать"),
    "get_time": ("Clock: current time", "Часы: текущее время"),
    "reminder_add": ("Reminders: add", "Напоминания: добавить"),
    "reminder_cancel": ("Reminders: cancel", "Напоминания: отменить"),
    "reminder_list": ("Reminders: list", "Напоминания: список"),
    "run_skill": ("Skill: run", "Навык: запустить"),
    "read_skill": ("Skill: read instructions", "Навык: прочитать инструкцию"),
    "panel_open": ("Panels: open", "Панели: открыть"),
    "panel_list": ("Panels: list", "Панели: список"),
    "patch_propose": ("Patch: propose", "Патч: предложить"),
    "send_file": ("Files: send", "Файлы: отправить"),
    "workspace_overview": ("Workspace: overview", "Рабочая область: обзор"),
    "context_pages": ("Conversation: paged-out parts", "Беседа: выгруженные части"),
    "context_page_get": ("Conversation: bring back a part", "Беседа: вернуть часть"),
    "load_tools": ("Tools: load", "Инструменты: загрузить"),
}
# Arguments that say the most about a call, in order of preference.
_TELLING = (
    "text",
    "title",
    "name",
    "query",
    "content",
    "message",
    "command",
    "path",
    "template",
    "url",
    "item",
    "label",
    "value",
    "id",
)
_QUOTES = {"en": ("“", "”"), "ru": ("«", "»")}
_PANEL = re.compile(r"\(panel (?P<q>['\"])(?P<title>.*?)(?P=q), instance ")
_MAX_ARG = 60


def humanise(name: str) -> str:
    """``add_item`` → ``add item``, ``server-monitor`` → ``server monitor``."""
    words = re.sub(r"[_\-]+", " ", name).strip()
    return re.sub(r"\s+", " ", words)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def panel_title(spec: ToolSpec) -> str | None:
    """The panel's title a panel tool's description names (``(panel 'To-do', instance …``)."""
    found = _PANEL.search(spec.description)
    return found.group("title") if found else None


def telling_argument(arguments: str | dict[str, Any]) -> str | None:
    """The argument that says most about the call, as a short string (None: no such one)."""
    try:
        args = json.loads(arguments) if isinstance(arguments, str) else arguments
    except ValueError:
        return None
    if not isinstance(args, dict):
        return None
    if isinstance(args.get("input"), dict):  # run_skill: the skill's own input
        inner = telling_argument(args["input"])
        if inner is not None:
            return inner
    keys = [k for k in _TELLING if k in args] + [k for k in args if k not in _TELLING]
    for key in keys:
        value = args[key]
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            text = " ".join(str(value).split())
            if text:
                return text if len(text) <= _MAX_ARG else text[: _MAX_ARG - 1] + "…"
    return None


def tool_label(
    name: str,
    arguments: str | dict[str, Any],
    lang: str | None = None,
    titles: Callable[[str], str | None] | None = None,
) -> str:
    """The call in plain words. ``titles`` answers a panel tool's name with its panel's
    title (None: the panel id is made readable instead)."""
    ru = lang == "ru"
    opening, closing = _QUOTES["ru" if ru else "en"]
    arg = telling_argument(arguments)
    parts = name.split("__")
    if name in _BUILTIN:
        head = _BUILTIN[name][1 if ru else 0]
        if name == "run_skill" and isinstance(skill := _arg(arguments, "name"), str):
            head = f"{'Навык' if ru else 'Skill'} {skill}: {'запустить' if ru else 'run'}"
            inner = _arg(arguments, "input")
            arg = telling_argument(inner) if isinstance(inner, dict) else None
    elif len(parts) >= 4:  # a panel tool: user, workspace, panel, tool
        title = (titles(name) if titles is not None else None) or _capital(humanise(parts[2]))
        head = f"{title}: {humanise(parts[-1])}"
    elif len(parts) == 2:  # an MCP server's tool
        head = f"{_capital(humanise(parts[0]))}: {humanise(parts[1])}"
    else:
        head = _capital(humanise(name))
    return f"{head} {opening}{arg}{closing}" if arg else head


def _arg(arguments: str | dict[str, Any], key: str) -> Any:
    try:
        args = json.loads(arguments) if isinstance(arguments, str) else arguments
    except ValueError:
        return None
    return args.get(key) if isinstance(args, dict) else None


class ToolLabeler:
    """Labels the calls of one turn; the toolset (for panel titles) is read on first need."""

    def __init__(self, specs: Callable[[], Iterable[ToolSpec]] | None, lang: str | None) -> None:
        self._specs = specs
        self._lang = lang
        self._titles: dict[str, str] | None = None

    def _title(self, name: str) -> str | None:
        if self._titles is None:
            self._titles = {}
            if self._specs is not None:
                try:
                    for spec in self._specs():
                        title = panel_title(spec)
                        if title:
                            self._titles[spec.name] = title
                except Exception:  # a label is a courtesy: never fail a turn over it
                    self._titles = {}
        return self._titles.get(name)

    def __call__(self, name: str, arguments: str | dict[str, Any]) -> str:
        return tool_label(name, arguments, self._lang, self._title)
