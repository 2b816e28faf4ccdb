"""``connectors.webhook`` in config.yml, validated once at start (no aiohttp import)::

connectors:
  webhook:
    url: "https://hooks.example.com/nexflow"
    secret: "${HOOK_OUT_SECRET}"
    timeout_s: 10
    headers: {}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from nexflow.config.loader import validate_section

# RFC 9110 token characters: what a header name may be made of.
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Set by the connector on every request; a configured header must not replace them.
_RESERVED = frozenset({"content-type", "content-length", "host", "transfer-encoding"})
_RESERVED_PREFIX = "x-nexflow-"


class WebhookConfig(BaseModel):
    """``url``: where every outbound is POSTed (http or https). ``secret``: the HMAC key
    (at least 16 characters) for ``X-Nexflow-Signature``. ``timeout_s``: one request's
    whole time. ``headers``: extra headers sent with every request (e.g. an
    ``Authorization`` the receiver wants); the ``X-Nexflow-*`` ones and ``Content-Type``
    are the connector's own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    secret: SecretStr
    timeout_s: float = Field(10.0, gt=0, le=300)
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value

    @field_validator("secret")
    @classmethod
    def _long_secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("the signing secret must be at least 16 characters")
        return value

    @field_validator("headers")
    @classmethod
    def _own_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, header in value.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid header name")
            lowered = name.lower()
            if lowered in _RESERVED or lowered.startswith(_RESERVED_PREFIX):
                raise ValueError(f"{name} is set by the connector; remove it from headers")
            if "\r" in header or "\n" in header:
                raise ValueError(f"the value of {name} must be one line")
        return value

    @classmethod
    def from_section(
        cls, section: Mapping[str, Any], source: str = "configuration"
    ) -> WebhookConfig:
        """Validate the raw section; problems name ``connectors.webhook.<key>``."""
        return validate_section(cls, section, "connectors.webhook", source)
