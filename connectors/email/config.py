"""``connectors.email`` in config.yml, validated once at start::

connectors:
  email:
    address: "nexflow@example.com"        # our From
    imap: {host: imap.example.com, port: 993, username: nexflow@example.com,
           password: "${EMAIL_PASSWORD}", ssl: true, mailbox: INBOX}
    smtp: {host: smtp.example.com, port: 587, username: nexflow@example.com,
           password: "${EMAIL_PASSWORD}", ssl: starttls}
    allow: ["alice@example.com", "@example.org"]
    idle: true            # wait in IMAP IDLE when the server offers it, else poll
    idle_s: 1500          # re-issue IDLE after this long (servers drop it at 30 min)
    poll_s: 30
    max_bytes: 1000000    # the text the model sees
    max_mail_bytes: 50000000
    attachments: {max_file_bytes: 10000000, max_total_bytes: 25000000, max_count: 10}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from nexflow.config.loader import validate_section

Tls = bool | Literal["starttls"]
_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+")
_DOMAIN = re.compile(r"@[^@\s]+")


class ImapConfig(BaseModel):
    """``ssl``: true (implicit TLS, port 993), ``starttls`` or false (plain, port 143)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    port: int | None = Field(None, ge=1, le=65535)
    username: str
    password: SecretStr
    ssl: Tls = True
    mailbox: str = "INBOX"
    timeout_s: float = Field(30.0, gt=0)

    @property
    def effective_port(self) -> int:
        return self.port or (993 if self.ssl is True else 143)


class SmtpConfig(BaseModel):
    """``ssl``: true (implicit TLS, 465), ``starttls`` (587) or false (plain, 25).
    ``username``/``password`` may be left out for a relay that needs no login."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    port: int | None = Field(None, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    ssl: Tls = "starttls"
    timeout_s: float = Field(30.0, gt=0)

    @property
    def effective_port(self) -> int:
        if self.port:
            return self.port
        return 465 if self.ssl is True else 587 if self.ssl == "starttls" else 25


class AttachmentLimits(BaseModel):
    """Files in and out of a mail. A file over ``max_file_bytes``, past ``max_count``, or
    one that would take the mail past ``max_total_bytes`` is left out with a note."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_file_bytes: int = Field(10_000_000, ge=0)
    max_total_bytes: int = Field(25_000_000, ge=0)
    max_count: int = Field(10, ge=0)


class EmailConfig(BaseModel):
    """``allow``: addresses (``alice@example.com``) or domains (``@example.org``) that are
    approved without pairing; everyone else goes through the channel's policy.
    ``max_bytes`` cuts the text of a mail; a mail larger than ``max_mail_bytes`` is not
    downloaded (the model is told of it from its headers)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str
    imap: ImapConfig
    smtp: SmtpConfig
    allow: list[str] = Field(default_factory=list)
    idle: bool = True
    idle_s: float = Field(1500.0, gt=0, le=1740)  # RFC 2177: re-issue within 29 minutes
    poll_s: float = Field(30.0, gt=0)
    max_bytes: int = Field(1_000_000, ge=1024)
    max_mail_bytes: int = Field(50_000_000, ge=1024)
    attachments: AttachmentLimits = AttachmentLimits()
    backoff_max_s: float = Field(300.0, gt=0)

    @field_validator("address")
    @classmethod
    def _an_address(cls, value: str) -> str:
        if not _ADDRESS.fullmatch(value.strip()):
            raise ValueError("not an email address (expected name@domain)")
        return value.strip().lower()

    @field_validator("allow")
    @classmethod
    def _addresses_or_domains(cls, value: list[str]) -> list[str]:
        out = []
        for raw in value:
            entry = raw.strip().lower()
            if not (_ADDRESS.fullmatch(entry) or _DOMAIN.fullmatch(entry)):
                raise ValueError(f"{entry!r} is neither an address nor a domain like @example.org")
            out.append(entry)
        return out

    def allows(self, sender: str) -> bool:
        sender = sender.lower()
        domain = "@" + sender.rpartition("@")[2]
        return sender in self.allow or domain in self.allow

    @property
    def account(self) -> str:
        """The file-name-safe name of this mailbox (for its state files)."""
        return re.sub(r"[^\w.@-]+", "_", self.address)

    @classmethod
    def from_section(cls, section: Mapping[str, Any], source: str = "configuration") -> EmailConfig:
        """Validate the raw section; problems name ``connectors.email.<key>``."""
        return validate_section(cls, section, "connectors.email", source)
