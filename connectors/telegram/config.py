"""The ``connectors.telegram`` section of the configuration (dependency-free)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

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
    webhook_url: str | None = None
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
        if self.mode == "webhook" and not (self.webhook_url and self.webhook_secret):
            raise ValueError("mode: webhook needs webhook_url and webhook_secret")
        return self

    @classmethod
    def from_section(
        cls, section: Mapping[str, Any], source: str = "configuration"
    ) -> TelegramConfig:
        """Validate the raw section; problems name ``connectors.telegram.<key>``."""
        return validate_section(cls, section, "connectors.telegram", source)
