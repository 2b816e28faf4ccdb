"""The few sentences Nexflow itself says to users, in English and Russian.

A plain catalogue (one dict per language, ``str.format`` placeholders), no gettext: the
model answers in the user's language by itself; this covers the commands, the pairing
and linking replies, confirmations and refusals. :func:`t` falls back to English for a
missing language or key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LANGUAGES = ("en", "ru")
DEFAULT = "en"

_EN: dict[str, str] = {
    "help": (
        "Commands:\n"
        "/help — this list\n"
        "/skills — the skills this Nexflow has\n"
        "/run <skill> [json | key=value …] — run a skill directly, without the model\n"
        "/status — version, model, queue\n"
        "/new — start a fresh conversation\n"
        "/link — a code to connect another channel to you; /link <code> enters it\n"
        "/lang ru|en — the language of these replies\n"
        "/panels — open panels and templates; /panel new <template>, /panel <id>\n"
        "/confirm <id>, /cancel <id> — answer a confirmation request"
    ),
    "start": "Hello! I am Nexflow, your assistant. Write to me, or send /help for the commands.",
    "new": "Started a new conversation.",
    "unknown_command": "Unknown command /{name}. /help lists the commands.",
    "skills_none": "No skills are installed.",
    "skills_none_available": "(none available)",
    "skills_unavailable": "Unavailable ({count}):",
    "run_usage": "Usage: /run <skill> [json | key=value …]",
    "run_bad_input": "Could not read the input for {name}: {error}",
    "status": (
        "Nexflow {version}\nmodel: {model}\nqueue: {queue}\n"
        "skills: {skills} available, isolation {isolation}"
    ),
    "status_no_model": "none configured",
    "lang_set": "Language: English.",
    "lang_usage": "Usage: /lang ru|en (now: {lang}).",
    "link_code": (
        "Your link code: {code}\nWithin {minutes} minutes, send /link {code} from the other "
        "channel (Telegram, Discord…) to make it the same you: one memory, one budget."
    ),
    "link_done": "Linked: this channel is now connected to your Nexflow account.",
    "link_bad": (
        "That link code is unknown or has expired. Send /link in the other channel for a new one."
    ),
    "link_here": "The web chat is always the owner; enter this code in the other channel instead.",
    "pairing": (
        "Hello! This Nexflow answers only people its owner has approved. "
        "Your pairing code is {code} (valid {minutes} minutes). Send it to the owner; "
        "until they approve it, your messages are not answered."
    ),
    "pairing_approved": "You have been approved. Write to me!",
    "not_allowed": (
        "You are not on this Nexflow's allow list. Ask its owner to add your id "
        "({channel}:{sender}) under security.channels.{channel}.allow."
    ),
    "channel_disabled": "This channel is disabled on this Nexflow.",
    "rate_limited": "Too many messages; try again in {wait} s.",
    "no_model": "{detail}",
    "confirm_approved": "Confirmed.",
    "confirm_declined": "Cancelled; nothing was run.",
    "confirm_expired": "That confirmation has expired.",
    "confirm_unknown": "There is no pending confirmation with that id (it may have expired).",
    "confirm_not_yours": "That confirmation was not asked of you.",
    "budget_daily_exhausted": (
        "You have used your daily budget of {limit} tokens, so I did not send this message "
        "to the model. The budget resets at midnight UTC; the owner can raise "
        "budgets.per_user_daily_tokens."
    ),
    "budget_monthly_exhausted": (
        "You have used your monthly budget of {limit} tokens, so I did not send this message "
        "to the model. The budget resets on the 1st (UTC); the owner can raise "
        "budgets.per_user_monthly_tokens."
    ),
    "budget_daily_warning": "⚠ {percent}% of your daily budget of {limit} tokens is used.",
    "budget_monthly_warning": "⚠ {percent}% of your monthly budget of {limit} tokens is used.",
    "status_usage": "LLM today: {calls} calls, {tokens} tokens, ${cost}",
    "status_budget": "your tokens: today {today} of {daily}, this month {month} of {monthly}",
    "status_unlimited": "unlimited",
}

_RU: dict[str, str] = {
    "help": (
        "Команды:\n"
        "/help — этот список\n"
        "/skills — навыки этого Nexflow\n"
        "/run <навык> [json | ключ=значение …] — запустить навык напрямую, без модели\n"
        "/status — версия, модель, очередь\n"
        "/new — начать новый разговор\n"
        "/link — код, чтобы подключить другой канал к вам; /link <код> — ввести его\n"
        "/lang ru|en — язык этих ответов\n"
        "/panels — открытые панели и шаблоны; /panel new <шаблон>, /panel <id>\n"
        "/confirm <id>, /cancel <id> — ответить на запрос подтверждения"
    ),
    "start": (
        "Привет! Я Nexflow, ваш ассистент. Пишите мне или отправьте /help, чтобы увидеть команды."
    ),
    "new": "Начат новый разговор.",
    "unknown_command": "Неизвестная команда /{name}. /help покажет список команд.",
    "skills_none": "Навыки не установлены.",
    "skills_none_available": "(доступных нет)",
    "skills_unavailable": "Недоступны ({count}):",
    "run_usage": "Использование: /run <навык> [json | ключ=значение …]",
    "run_bad_input": "Не удалось прочитать входные данные для {name}: {error}",
    "status": (
        "Nexflow {version}\nмодель: {model}\nочередь: {queue}\n"
        "навыки: доступно {skills}, изоляция {isolation}"
    ),
    "status_no_model": "не настроена",
    "lang_set": "Язык: русский.",
    "lang_usage": "Использование: /lang ru|en (сейчас: {lang}).",
    "link_code": (
        "Ваш код привязки: {code}\nВ течение {minutes} минут отправьте /link {code} из другого "
        "канала (Telegram, Discord…), чтобы это были вы же: одна память, один бюджет."
    ),
    "link_done": "Привязано: этот канал теперь подключён к вашей учётной записи Nexflow.",
    "link_bad": (
        "Код привязки неизвестен или истёк. Отправьте /link в другом канале, чтобы получить новый."
    ),
    "link_here": "Веб-чат всегда принадлежит владельцу; введите этот код в другом канале.",
    "pairing": (
        "Здравствуйте! Этот Nexflow отвечает только тем, кого одобрил владелец. "
        "Ваш код сопряжения: {code} (действует {minutes} минут). Передайте его владельцу; "
        "пока он не одобрит код, ваши сообщения остаются без ответа."
    ),
    "pairing_approved": "Владелец одобрил вас. Пишите!",
    "not_allowed": (
        "Вас нет в списке допущенных этого Nexflow. Попросите владельца добавить ваш id "
        "({channel}:{sender}) в security.channels.{channel}.allow."
    ),
    "channel_disabled": "Этот канал отключён в этом Nexflow.",
    "rate_limited": "Слишком много сообщений; попробуйте снова через {wait} с.",
    "no_model": "Языковая модель не настроена. Что сделать владельцу:\n{detail}",
    "confirm_approved": "Подтверждено.",
    "confirm_declined": "Отменено; ничего не запущено.",
    "confirm_expired": "Срок этого подтверждения истёк.",
    "confirm_unknown": "Нет ожидающего подтверждения с таким id (возможно, оно истекло).",
    "confirm_not_yours": "Это подтверждение запрашивали не у вас.",
    "budget_daily_exhausted": (
        "Ваш дневной бюджет в {limit} токенов исчерпан, поэтому это сообщение не отправлено "
        "модели. Бюджет обновится в полночь по UTC; владелец может увеличить "
        "budgets.per_user_daily_tokens."
    ),
    "budget_monthly_exhausted": (
        "Ваш месячный бюджет в {limit} токенов исчерпан, поэтому это сообщение не отправлено "
        "модели. Бюджет обновится 1-го числа (UTC); владелец может увеличить "
        "budgets.per_user_monthly_tokens."
    ),
    "budget_daily_warning": "⚠ Использовано {percent}% дневного бюджета в {limit} токенов.",
    "budget_monthly_warning": "⚠ Использовано {percent}% месячного бюджета в {limit} токенов.",
    "status_usage": "LLM сегодня: вызовов {calls}, токенов {tokens}, ${cost}",
    "status_budget": "ваши токены: сегодня {today} из {daily}, за месяц {month} из {monthly}",
    "status_unlimited": "без ограничений",
}

CATALOGUE: Mapping[str, Mapping[str, str]] = {"en": _EN, "ru": _RU}


def normalize(code: object) -> str | None:
    """``"ru-RU"`` → ``"ru"``; None for a language without a catalogue."""
    if not isinstance(code, str) or not code:
        return None
    base = code.strip().lower().replace("_", "-").split("-", 1)[0]
    return base if base in CATALOGUE else None


def pick(stored: str | None, platform: object = None) -> str:
    """The user's language: their ``/lang`` choice, else the platform's, else English."""
    return normalize(stored) or normalize(platform) or DEFAULT


def t(lang: str | None, key: str, /, **values: Any) -> str:
    template = CATALOGUE.get(lang or DEFAULT, _EN).get(key) or _EN[key]
    return template.format(**values) if values else template
