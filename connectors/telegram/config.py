"""The ``connectors.telegram`` section of the configuration (dependency-free)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from nexflow.config.loader import validate_section

_TOKEN = re.compile(r"\d+:[\w-]+")
# The gateway serves webhooks at webhook_url's path, under the prefix its guard leaves to
# the route's own secret check (nexflow.web.hooks.SELF_AUTHENTICATED; not imported here:
# this module stays dependency-free).
WEBHOOK_PREFIX = "/telegram/"
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


class TelegramConfig(BaseModel):
    """Keys follow the PRD example: ``bot_token``, ``api_server``, ``allowed_users``,
    ``allowed_chats``; the rest have safe defaults (see docs/connectors.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bot_token: SecretStr
    api_server: str | None = None  # a local Bot API server (or the test fake)
    allowed_users: list[int] = Field(default_factory=list)  # empty: anyone may talk
    allowed_chats: list[int] = Field(default_factory=list)  # groups; empty: any group
    # reject: others are dropped at the connector and told once; pass: forwarded with
    # metadata allowed=False so the gateway's pairing policy decides.
    unknown_users: Literal["reject", "pass"] = "reject"
    group_mode: Literal["mention", "all"] = "mention"
    mode: Literal["polling", "webhook"] = "polling"
    # webhook mode: the public https URL Telegram POSTs to; the gateway serves its path,
    # which must start with /telegram/ (e.g. https://bot.example.com/telegram/webhook/x7k).
    webhook_url: str | None = None
    # webhook mode: Telegram sends it in X-Telegram-Bot-Api-Secret-Token (1-256 of A-Z,
    # a-z, 0-9, _ and -); anything without it is refused.
    webhook_secret: SecretStr | None = None
    poll_timeout_s: int = Field(25, ge=0, le=50)
    watchdog_s: float = Field(15.0, gt=0)  # a poll not answered by poll_timeout_s + this
    backoff_initial_s: float = Field(1.0, ge=0)
    backoff_max_s: float = Field(60.0, ge=0)
    request_timeout_s: int = Field(30, ge=1)
    typing: bool = True
    typing_max_s: float = Field(120.0, gt=0)
    stream_edits: bool = True
    stream_edit_interval_s: float = Field(1.5, ge=0)
    max_file_mb: int = Field(20, ge=1, le=2000)
    queue_size: int = Field(256, ge=1)

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        if not _TOKEN.fullmatch(value.get_secret_value()):
            raise ValueError(
                "not a Telegram bot token (expected <digits>:<secret>, from @BotFather)"
            )
        return value

    @model_validator(mode="after")
    def _webhook_needs_url_and_secret(self) -> TelegramConfig:
        if self.mode != "webhook":
            return self
        if not (self.webhook_url and self.webhook_secret):
            raise ValueError("mode: webhook needs webhook_url and webhook_secret")
        if not _SECRET.fullmatch(self.webhook_secret.get_secret_value()):
            raise ValueError(
                "webhook_secret must be 1-256 characters of A-Z, a-z, 0-9, _ and - "
                "(Telegram's rule for secret_token)"
            )
        if not self.webhook_path.startswith(WEBHOOK_PREFIX) or self.webhook_path == WEBHOOK_PREFIX:
            raise ValueError(
                f"webhook_url's path must start with {WEBHOOK_PREFIX} (the gateway serves the "
                "webhook there), e.g. https://bot.example.com/telegram/webhook/x7k"
            )
        return self

    @property
    def webhook_path(self) -> str:
        """The path of ``webhook_url``: where the gateway serves the webhook."""
        return urlsplit(self.webhook_url or "").path

    @classmethod
    def from_section(
        cls, section: Mapping[str, Any], source: str = "configuration"
    ) -> TelegramConfig:
        """Validate the raw section; problems name ``connectors.telegram.<key>``."""
        return validate_section(cls, section, "connectors.telegram", source)
