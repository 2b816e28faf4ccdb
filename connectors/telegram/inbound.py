"""Telegram updates → :class:`InboundEvent`: access rules, group gating, files in.

Access (``allowed_users`` / ``allowed_chats``):

* a group listed in ``allowed_chats`` is open to all its members; when the list is not
  empty, other groups are ignored silently;
* otherwise (private chats, and any group when ``allowed_chats`` is empty) the sender
  must be in ``allowed_users``, unless that list is empty;
* a sender who fails the check is dropped (``unknown_users: reject``; told once per
  process, in private chats only) or forwarded (``unknown_users: pass``) for the
  gateway's pairing policy to decide.

``metadata["allowlisted"]`` is True only when the sender (or the group) is listed
explicitly: those count as approved and need no pairing. With both lists empty every
sender gets through with ``allowlisted`` False.

In groups with ``group_mode: mention`` only messages that mention the bot, reply to
one of its messages, or are commands (``/cmd`` or ``/cmd@this_bot``) are taken.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import structlog
from aiogram import Bot
from aiogram.types import CallbackQuery, Chat, Message, MessageEntity, User

from connectors.telegram.config import TelegramConfig
from nexflow.bus.events import Attachment, InboundEvent

log = structlog.get_logger("nexflow.telegram")

Access = Literal["listed", "open", "reject", "ignore"]
_UNSAFE = re.compile(r"[^\w.\-]+")


@dataclass(frozen=True, slots=True)
class BotIdentity:
    id: int
    username: str


def access(config: TelegramConfig, chat: Chat, user: User | None) -> Access:
    group = chat.type != "private"
    if group and config.allowed_chats:
        return "listed" if chat.id in config.allowed_chats else "ignore"
    if user is None:
        return "ignore"
    if user.id in config.allowed_users:
        return "listed"
    if not config.allowed_users:
        return "open"
    return "reject" if not group else "ignore"


def _entity_text(text: str, entity: MessageEntity) -> str:
    raw = text.encode("utf-16-le")[entity.offset * 2 : (entity.offset + entity.length) * 2]
    return raw.decode("utf-16-le", errors="replace")


def addressed(message: Message, me: BotIdentity) -> bool:
    """Whether a group message is meant for the bot."""
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == me.id:
        return True
    text = message.text or message.caption or ""
    entities = message.entities or message.caption_entities or []
    for entity in entities:
        value = _entity_text(text, entity)
        if entity.type == "mention" and value[1:].lower() == me.username.lower():
            return True
        if entity.type == "text_mention" and entity.user is not None and entity.user.id == me.id:
            return True
        if entity.type == "bot_command" and entity.offset == 0:
            _, _, target = value.partition("@")
            return not target or target.lower() == me.username.lower()
    return False


def strip_mention(text: str, me: BotIdentity) -> str:
    """``@bot what's up`` → ``what's up`` (commands keep their ``@bot`` suffix)."""
    pattern = rf"(?<![/\w])@{re.escape(me.username)}\b"
    return re.sub(r"[ \t]{2,}", " ", re.sub(pattern, "", text, flags=re.I)).strip()


def _metadata(chat: Chat, user: User | None, allowlisted: bool) -> dict[str, object]:
    meta: dict[str, object] = {"chat_type": chat.type, "allowlisted": allowlisted}
    if user is not None:
        meta["first_name"] = user.first_name
        if user.username:
            meta["username"] = user.username
        if user.language_code:
            meta["language"] = user.language_code
    return meta


async def message_event(
    bot: Bot,
    message: Message,
    me: BotIdentity,
    config: TelegramConfig,
    files_dir: Path,
    channel: str,
    allowlisted: bool,
) -> InboundEvent | None:
    """The event for a message, or None when it is not for the bot (group gating)."""
    group = message.chat.type != "private"
    if group and config.group_mode == "mention" and not addressed(message, me):
        return None
    text = strip_mention(message.text or message.caption or "", me)
    attachments, notes = await _download(bot, message, config, files_dir)
    if notes:
        text = "\n".join([text, *notes]).strip()
    if not text and not attachments:
        return None  # stickers, service messages, …
    user = message.from_user
    return InboundEvent(
        channel=channel,
        chat_id=str(message.chat.id),
        sender_id=str(user.id if user is not None else message.chat.id),
        message=text,
        external_id=f"{message.chat.id}:{message.message_id}",
        attachments=tuple(attachments),
        metadata={**_metadata(message.chat, user, allowlisted), "message_id": message.message_id},
    )


def callback_event(
    query: CallbackQuery, command: str, channel: str, allowlisted: bool
) -> InboundEvent | None:
    message = query.message
    if message is None:
        return None
    return InboundEvent(
        channel=channel,
        chat_id=str(message.chat.id),
        sender_id=str(query.from_user.id),
        message=command,
        external_id=f"cb:{query.id}",
        metadata={
            **_metadata(message.chat, query.from_user, allowlisted),
            "callback": True,
            "message_id": message.message_id,
        },
    )


async def _download(
    bot: Bot, message: Message, config: TelegramConfig, files_dir: Path
) -> tuple[list[Attachment], list[str]]:
    """Save a document or the largest photo size under ``files_dir/<chat>/``."""
    if message.document is not None:
        doc = message.document
        file_id, size, mime = doc.file_id, doc.file_size or 0, doc.mime_type
        name = doc.file_name or f"document-{message.message_id}"
    elif message.photo:
        photo = message.photo[-1]
        file_id, size, mime = photo.file_id, photo.file_size or 0, "image/jpeg"
        name = f"photo-{message.message_id}.jpg"
    else:
        return [], []
    if size > config.max_file_mb * 1024 * 1024:
        return [], [f"(attachment {name} was not downloaded: larger than {config.max_file_mb} MB)"]
    safe = _UNSAFE.sub("_", name).strip("._") or "file"
    target = files_dir / str(message.chat.id) / f"{message.message_id}-{safe}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        await bot.download(file_id, destination=target, timeout=config.request_timeout_s)
    except Exception:
        log.warning("telegram_download_failed", file=name, exc_info=True)
        return [], [f"(attachment {name} could not be downloaded)"]
    actual = target.stat().st_size
    return [Attachment(name, str(target), mime or "application/octet-stream", actual)], []
