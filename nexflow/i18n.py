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
        "/paged — what was paged out of this conversation's context\n"
        "/link — a code to connect another channel to you; /link <code> enters it\n"
        "/lang ru|en — the language of these replies\n"
        "/panels — open panels and templates; /panel <id>\n"
        "/panel new <template> [in <workspace>] — a new panel (in a named workspace)\n"
        "/skill install <folder|git URL|archive>, /skill verify — install a skill after a "
        "scan (owner)\n"
        "/confirm <id>, /cancel <id> — answer a confirmation request"
    ),
    "start": "Hello! I am Nexflow, your assistant. Write to me, or send /help for the commands.",
    "new": "Started a new conversation.",
    "paged_none": "Nothing in this conversation has been paged out of the context yet.",
    "paged_header": (
        "Paged out of this conversation's context ({count}; nothing is deleted; ask me to "
        'bring one back, e.g. "restore page {first}"):'
    ),
    "paged_line": "page {id} · {when} · {messages} messages{flag}: {summary}",
    "paged_unflushed": " · facts not saved to memory yet",
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
    "confirm_expired": "That confirmation was already answered or has expired.",
    "confirm_unknown": "There is no pending confirmation with that id (it may have expired).",
    "confirm_not_yours": "That confirmation was not asked of you.",
    "confirm_expired_turn": "Confirmation {id} expired; nothing was run.",
    "dead_letter": (
        "Sorry: your message could not be handled after {attempts} attempts, so it was set "
        "aside (dead letter {id}) and will not be retried by itself. The owner can retry it "
        "with `nexflow inbox retry {id}`."
    ),
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
    "help_workspaces": (
        "/sync <panel> — ask the AI what this panel's changes mean for the other panels and "
        "files; each change arrives as a patch to review\n"
        "/patches — patches waiting for review; /accept <id>, /reject <id>\n"
        "/history <panel> — a panel's commits; /restore <panel> <sha> brings one back"
    ),
    "ws_disabled": "Workspaces are not enabled on this Nexflow.",
    "ws_usage_sync": "Usage: /sync <panel id> (/panels lists them).",
    "ws_usage_patches": "Usage: /patches",
    "ws_usage_accept": "Usage: /accept <patch id> (/patches lists them).",
    "ws_usage_reject": "Usage: /reject <patch id> (/patches lists them).",
    "ws_usage_history": "Usage: /history <panel id>",
    "ws_usage_restore": "Usage: /restore <panel id> <commit sha> (/history <panel id> lists them).",
    "ws_syncing": "Syncing {panel}… asking the model which panels and files it affects.",
    "ws_nothing": "Sync from {panel}: nothing to change.",
    "ws_synced": "Sync from {panel}: {count} patch(es) to review.",
    "ws_no_patches": "No patches are waiting for review.",
    "ws_pending": "Patches waiting for review: {count}.",
    "ws_merged": "Patch {id} accepted: merged into main ({commit}).",
    "ws_rejected": "Patch {id} rejected: its branch is deleted, main is unchanged.",
    "ws_conflict": "Patch {id} was not merged: {reason}. main is unchanged.",
    "ws_history_empty": "No commits of {panel} yet.",
    "ws_history": "History of {panel}, newest first (/restore {panel} <sha>):",
    "ws_restored": "{panel} is back at {sha} (new commit {commit}).",
    "ws_sync_button": "⟳ Sync",
    "ws_review_target": "target: {target} (from {source})",
    "ws_review_state": "state keys changed: {keys}",
    "ws_review_added": "NXML nodes added: {nodes}",
    "ws_review_removed": "NXML nodes removed: {nodes}",
    "ws_review_status": "status: {status} ({reason})",
    "ws_review_problem": "⚠ {problem}",
    "ws_review_cut": "… {lines} more lines not shown; the full diff: {url}",
    # the trust gate (nexflow/trust/gate.py): a call that follows untrusted content
    "trust_title": "Confirm {tool}: it follows untrusted content",
    "trust_detail": (
        "This turn read untrusted content from {sources}; it may carry instructions that "
        "are not yours. The assistant now wants to {effects}:\n\n{action}\n\n"
        "Approve only if you asked for this."
    ),
    "trust_writes": "change your saved data",
    "trust_egress": "send data out",
    "trust_writes_egress": "change your saved data and send data out",
    # flows and tasks (nexflow/gateway/commands_flows.py); *_one/_few/_many: see tn()
    "help_flows": (
        "/flows — your flows (flows/<name>.yaml in your workspace)\n"
        "/flow run <name> [key=value | key:=json …] — start one; the reply has the task id\n"
        "/tasks — your latest tasks; /task <id> — its stages, with Pause / Resume / Stop\n"
        "/task <id> pause|resume|stop|retry — control a task"
    ),
    "flows_disabled": "Flows are not enabled on this Nexflow.",
    "flows_unavailable": "Flows are not available right now: {error}",
    "flows_none": (
        "You have no flows yet: save one as flows/<name>.yaml in your workspace "
        "(or POST /api/v1/flows)."
    ),
    "flows_header_one": "{count} flow:",
    "flows_header_few": "{count} flows:",
    "flows_header_many": "{count} flows:",
    "flows_invalid": "✗ {name} (invalid): {error}",
    "flows_next_run": " · next run {when}",
    "flows_more_errors": " (+{count} more)",
    "flow_usage": "Usage: /flow run <name> [key=value | key:=json …] (/flows lists them).",
    "flow_bad_args": "Could not read the arguments: {error}",
    "flow_not_started": "{name} was not started: {error}",
    "flow_started": "Started {flow}: task {id}. /task {id} shows its stages.",
    "tasks_none": "You have no tasks yet. /flow run <name> starts one.",
    "tasks_header_one": "{count} task, newest first:",
    "tasks_header_few": "{count} tasks, newest first:",
    "tasks_header_many": "{count} tasks, newest first:",
    "tasks_more": "… and {count} more (GET /api/v1/tasks lists them all).",
    "task_usage": "Usage: /task <id> [pause|resume|stop|retry] (/tasks lists them).",
    "task_not_found": "There is no task {id} of yours (/tasks lists them).",
    "task_ambiguous": "{id} fits several tasks: give more of the id.",
    "task_title": "Task {id} · {flow}",
    "task_summary": "{state}, {progress}% done · tokens {tokens_in} in / {tokens_out} out",
    "task_error": "error: {error}",
    "task_attempts_one": "{count} attempt",
    "task_attempts_few": "{count} attempts",
    "task_attempts_many": "{count} attempts",
    "task_seconds": "{seconds} s",
    "task_tokens": "tokens {tokens_in}/{tokens_out}",
    "task_hint": "/task {id} {actions}",
    "task_pause": "⏸ Pause",
    "task_resume": "▶ Resume",
    "task_stop": "⏹ Stop",
    "task_retry": "↻ Retry",
    "task_done_pause": "Task {id} paused.",
    "task_done_resume": "Task {id} resumed.",
    "task_done_stop": "Task {id} stopped.",
    "task_done_retry": "Task {id} is retried as the new task {new}.",
    "task_refused": "Task {id}: {error}",
    "state_pending": "pending",
    "state_queued": "waiting for a free slot",
    "state_running": "running",
    "state_waiting": "waiting",
    "state_paused": "paused",
    "state_completed": "completed",
    "state_failed": "failed",
    "state_skipped": "skipped",
    "state_cancelled": "stopped",
}

_RU: dict[str, str] = {
    "help": (
        "Команды:\n"
        "/help — этот список\n"
        "/skills — навыки этого Nexflow\n"
        "/run <навык> [json | ключ=значение …] — запустить навык напрямую, без модели\n"
        "/status — версия, модель, очередь\n"
        "/new — начать новый разговор\n"
        "/paged — что выгружено из контекста этого разговора\n"
        "/link — код, чтобы подключить другой канал к вам; /link <код> — ввести его\n"
        "/lang ru|en — язык этих ответов\n"
        "/panels — открытые панели и шаблоны; /panel <id>\n"
        "/panel new <шаблон> [in <пространство>] — новая панель (в именованном пространстве)\n"
        "/skill install <папка|git URL|архив>, /skill verify — установить навык после "
        "проверки (владелец)\n"
        "/confirm <id>, /cancel <id> — ответить на запрос подтверждения"
    ),
    "start": (
        "Привет! Я Nexflow, ваш ассистент. Пишите мне или отправьте /help, чтобы увидеть команды."
    ),
    "new": "Начат новый разговор.",
    "paged_none": "Из контекста этого разговора пока ничего не выгружено.",
    "paged_header": (
        "Выгружено из контекста этого разговора ({count}; ничего не удалено; попросите "
        "вернуть страницу, например «верни страницу {first}»):"
    ),
    "paged_line": "страница {id} · {when} · сообщений: {messages}{flag}: {summary}",
    "paged_unflushed": " · факты ещё не сохранены в память",
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
    "confirm_expired": "На это подтверждение уже ответили, или его срок истёк.",
    "confirm_unknown": "Нет ожидающего подтверждения с таким id (возможно, оно истекло).",
    "confirm_not_yours": "Это подтверждение запрашивали не у вас.",
    "confirm_expired_turn": "Срок подтверждения {id} истёк; ничего не выполнено.",
    "dead_letter": (
        "Извините: ваше сообщение не удалось обработать за {attempts} попытки, поэтому оно "
        "отложено (недоставленное сообщение {id}) и само повторяться не будет. Владелец может "
        "повторить его командой `nexflow inbox retry {id}`."
    ),
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
    # "из {daily}" would read "270 из без ограничений" when unlimited: name the limit instead.
    "status_budget": "ваши токены: сегодня {today} (лимит: {daily}), за месяц {month} "
    "(лимит: {monthly})",
    "status_unlimited": "нет",
    "help_workspaces": (
        "/sync <панель> — спросить ИИ, что изменения этой панели значат для других панелей и "
        "файлов; каждое изменение приходит патчем на проверку\n"
        "/patches — патчи, ждущие проверки; /accept <id>, /reject <id>\n"
        "/history <панель> — коммиты панели; /restore <панель> <sha> — вернуть версию"
    ),
    "ws_disabled": "Рабочие пространства в этом Nexflow не включены.",
    "ws_usage_sync": "Использование: /sync <id панели> (/panels покажет список).",
    "ws_usage_patches": "Использование: /patches",
    "ws_usage_accept": "Использование: /accept <id патча> (/patches покажет список).",
    "ws_usage_reject": "Использование: /reject <id патча> (/patches покажет список).",
    "ws_usage_history": "Использование: /history <id панели>",
    "ws_usage_restore": (
        "Использование: /restore <id панели> <sha коммита> (/history <id панели> покажет их)."
    ),
    "ws_syncing": "Синхронизирую {panel}… спрашиваю модель, какие панели и файлы это затрагивает.",
    "ws_nothing": "Синхронизация {panel}: менять нечего.",
    "ws_synced": "Синхронизация {panel}: патчей на проверку — {count}.",
    "ws_no_patches": "Нет патчей, ждущих проверки.",
    "ws_pending": "Патчей ждут проверки: {count}.",
    "ws_merged": "Патч {id} принят: влит в main ({commit}).",
    "ws_rejected": "Патч {id} отклонён: его ветка удалена, main не изменён.",
    "ws_conflict": "Патч {id} не влит: {reason}. main не изменён.",
    "ws_history_empty": "У {panel} ещё нет коммитов.",
    "ws_history": "История {panel}, сначала новые (/restore {panel} <sha>):",
    "ws_restored": "{panel} возвращена к {sha} (новый коммит {commit}).",
    "ws_sync_button": "⟳ Синхронизировать",
    "ws_review_target": "цель: {target} (источник: {source})",
    "ws_review_state": "изменены ключи состояния: {keys}",
    "ws_review_added": "добавлены узлы NXML: {nodes}",
    "ws_review_removed": "удалены узлы NXML: {nodes}",
    "ws_review_status": "статус: {status} ({reason})",
    "ws_review_problem": "⚠ {problem}",
    "ws_review_cut": "… ещё строк: {lines}, не показаны; полный diff: {url}",
    # шлюз доверия (nexflow/trust/gate.py): вызов после недоверенного содержимого
    "trust_title": "Подтвердите {tool}: после недоверенного содержимого",
    "trust_detail": (
        "В этом ходе прочитано недоверенное содержимое из {sources}; в нём могут быть "
        "чужие инструкции. Теперь ассистент хочет {effects}:\n\n{action}\n\n"
        "Подтверждайте, только если вы сами об этом просили."
    ),
    "trust_writes": "изменить ваши сохранённые данные",
    "trust_egress": "отправить данные наружу",
    "trust_writes_egress": "изменить ваши сохранённые данные и отправить данные наружу",
    # сценарии и задачи (nexflow/gateway/commands_flows.py); *_one/_few/_many: см. tn()
    "help_flows": (
        "/flows — ваши сценарии (flows/<имя>.yaml в вашем рабочем пространстве)\n"
        "/flow run <имя> [ключ=значение | ключ:=json …] — запустить; в ответе id задачи\n"
        "/tasks — ваши последние задачи; /task <id> — её этапы, с кнопками "
        "Пауза / Продолжить / Стоп\n"
        "/task <id> pause|resume|stop|retry — управлять задачей"
    ),
    "flows_disabled": "Сценарии в этом Nexflow не включены.",
    "flows_unavailable": "Сценарии сейчас недоступны: {error}",
    "flows_none": (
        "У вас пока нет сценариев: сохраните сценарий как flows/<имя>.yaml в рабочем "
        "пространстве (или через POST /api/v1/flows)."
    ),
    "flows_header_one": "{count} сценарий:",
    "flows_header_few": "{count} сценария:",
    "flows_header_many": "{count} сценариев:",
    "flows_invalid": "✗ {name} (с ошибками): {error}",
    "flows_next_run": " · следующий запуск {when}",
    "flows_more_errors": " (и ещё {count})",
    "flow_usage": (
        "Использование: /flow run <имя> [ключ=значение | ключ:=json …] (/flows покажет список)."
    ),
    "flow_bad_args": "Не удалось прочитать аргументы: {error}",
    "flow_not_started": "Сценарий {name} не запущен: {error}",
    "flow_started": "Запущен сценарий {flow}: задача {id}. /task {id} покажет её этапы.",
    "tasks_none": "У вас пока нет задач. /flow run <имя> запустит сценарий.",
    "tasks_header_one": "{count} задача, сначала новые:",
    "tasks_header_few": "{count} задачи, сначала новые:",
    "tasks_header_many": "{count} задач, сначала новые:",
    "tasks_more": "… и ещё {count} (GET /api/v1/tasks покажет все).",
    "task_usage": "Использование: /task <id> [pause|resume|stop|retry] (/tasks покажет список).",
    "task_not_found": "У вас нет задачи {id} (/tasks покажет список).",
    "task_ambiguous": "{id} подходит к нескольким задачам: укажите id длиннее.",
    "task_title": "Задача {id} · {flow}",
    "task_summary": (
        "{state}, выполнено {progress}% · токены: {tokens_in} вход / {tokens_out} выход"
    ),
    "task_error": "ошибка: {error}",
    "task_attempts_one": "{count} попытка",
    "task_attempts_few": "{count} попытки",
    "task_attempts_many": "{count} попыток",
    "task_seconds": "{seconds} с",
    "task_tokens": "токены {tokens_in}/{tokens_out}",
    "task_hint": "/task {id} {actions}",
    "task_pause": "⏸ Пауза",
    "task_resume": "▶ Продолжить",
    "task_stop": "⏹ Стоп",
    "task_retry": "↻ Повторить",
    "task_done_pause": "Задача {id} приостановлена.",
    "task_done_resume": "Задача {id} продолжена.",
    "task_done_stop": "Задача {id} остановлена.",
    "task_done_retry": "Задача {id} повторяется как новая задача {new}.",
    "task_refused": "Задача {id}: {error}",
    "state_pending": "в ожидании",
    "state_queued": "ждёт свободного слота",
    "state_running": "выполняется",
    "state_waiting": "ждёт",
    "state_paused": "на паузе",
    "state_completed": "готово",
    "state_failed": "ошибка",
    "state_skipped": "пропущено",
    "state_cancelled": "остановлено",
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


def plural_form(lang: str | None, count: int) -> str:
    """``one``, ``few`` or ``many``: Russian has three forms (1, 21 / 2-4, 22 / 5-20, 0),
    English two (1 / everything else, as ``many``)."""
    n = abs(count)
    if (lang or DEFAULT) != "ru":
        return "one" if n == 1 else "many"
    if n % 10 == 1 and n % 100 != 11:
        return "one"
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return "few"
    return "many"


def tn(lang: str | None, key: str, count: int, /, **values: Any) -> str:
    """:func:`t` of ``<key>_one|_few|_many`` for ``count`` (passed as ``{count}``)."""
    return t(lang, f"{key}_{plural_form(lang, count)}", count=count, **values)
