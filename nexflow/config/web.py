"""The web sections of the configuration: ``web`` (bind, token, users, browser guard) and
``webhooks`` (signed inbound hooks). Documented in ``config.example.yml``."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from nexflow.config.section import _Section

# A host name, an IPv4 or [IPv6] address, or "*.domain" (any subdomain), with an optional port.
_NAME = r"(\[[0-9a-fA-F:.]+\]|(\*\.)?[A-Za-z0-9-][A-Za-z0-9.-]*)(:\d{1,5})?"
_HOST = re.compile(rf"^(\*|{_NAME})$")  # "*": any host (turns the Host check off)
_ORIGIN = re.compile(rf"^https?://{_NAME}$")
_USER = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


class WebConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    token: SecretStr | None = None
    max_message_chars: int = Field(16_000, ge=1)
    reply_timeout_s: float = Field(120.0, gt=0)
    # How long a reply pushed to a session's open tabs waits for a tab's acknowledgement
    # before it is parked until a tab connects again (docs/connectors.md, web).
    ack_timeout_s: float = Field(10.0, gt=0, le=600)
    # Where people open the web UI (links in chat, e.g. a patch's full diff); default
    # http://<host>:<port>.
    public_url: str | None = None
    # Host names (optionally host:port) the gateway answers besides loopback, public_url's
    # host and the bound host: anything else is refused (DNS rebinding; docs/security.md).
    public_hosts: list[str] = Field(default_factory=list)
    # Browser origins (scheme://host[:port]) besides the gateway's own that may send
    # state-changing requests and open WebSockets.
    allowed_origins: list[str] = Field(default_factory=list)
    # Web users other than the owner: name -> their bearer token (role "user").
    users: dict[str, SecretStr] = Field(default_factory=dict)

    @field_validator("public_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for entry in value:
            if not _HOST.match(entry):
                raise ValueError(
                    f"web.public_hosts: {entry!r} is not a host name (e.g. nexflow.example.com "
                    "or nexflow.example.com:8443; no scheme, no path)"
                )
        return [entry.lower() for entry in value]

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for entry in value:
            if not _ORIGIN.match(entry):
                raise ValueError(
                    f"web.allowed_origins: {entry!r} is not an origin; write "
                    "scheme://host[:port] (e.g. https://nexflow.example.com), no path"
                )
        return [entry.lower() for entry in value]

    @field_validator("users")
    @classmethod
    def _users(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, token in value.items():
            if not _USER.match(name):
                raise ValueError(
                    f"web.users: {name!r} is not a valid name (lowercase letters, digits, "
                    "'_' and '-', up to 32 characters)"
                )
            if len(token.get_secret_value()) < 16:
                raise ValueError(f"web.users.{name}: the token must be at least 16 characters")
        return value


_HOOK_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class HookTarget(_Section):
    """Where an accepted webhook's message goes: a chat on a channel (and optionally a
    session, e.g. a web session's id)."""

    channel: str = Field(min_length=1)
    chat_id: str = Field(min_length=1)
    session: str | None = None
    # With the hook's `turn: true`: whose turn it is (the sender id on that channel; default
    # chat_id, which is the person in a private chat). Their allowlist, budget and tools apply.
    sender: str | None = None

    @field_validator("chat_id", mode="before")
    @classmethod
    def _chat_id(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class InboundHook(_Section):
    """One inbound webhook, ``POST /api/v1/hooks/<name>`` (docs/connectors.md#webhooks)."""

    secret: SecretStr
    # github: X-Hub-Signature-256; gitlab: X-Gitlab-Token; hmac: X-Nexflow-Signature over
    # "<X-Nexflow-Timestamp>.<body>" (timestamp within replay_window_s).
    scheme: Literal["github", "gitlab", "hmac"]
    to: HookTarget
    # str.format-like over the JSON payload: {workflow_run.name}, {commits.0.id}; a missing
    # key renders as "?"; {{ and }} are literal braces. None: a short generic message.
    template: str | None = None
    # Only these events (X-GitHub-Event / X-Gitlab-Event) are delivered; others get 202
    # "ignored". None: every event.
    events: list[str] | None = None
    max_bytes: int = Field(256 * 1024, ge=1, le=16 * 1024 * 1024)
    replay_window_s: float = Field(300.0, gt=0, le=86_400)
    # false: the rendered message is posted to the chat. true: it is a model turn in that
    # chat (e.g. "triage this failed run"): the reply goes to the chat, and the turn is
    # untrusted from the start (the payload is someone else's text), so every write or
    # egress it attempts waits for the person's confirmation.
    turn: bool = False
    # A flow (flows/<name>.yaml in the workspace of to.sender's user) to run on each
    # accepted delivery, with these inputs: templates like `template` over the payload
    # ({workflow_run.id}); the run's cards and notices go to `to`. Instead of a message.
    flow: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    flow_args: dict[str, str] = Field(default_factory=dict)
    flow_priority: int = Field(3, ge=1, le=5)

    @model_validator(mode="after")
    def _one_action(self) -> InboundHook:
        if self.flow is not None and self.turn:
            raise ValueError("a hook runs a flow or starts a turn, not both (flow or turn: true)")
        if self.flow_args and self.flow is None:
            raise ValueError("flow_args needs flow")
        from nexflow.hooks.render import parse_template

        for value in self.flow_args.values():
            parse_template(value)
        return self

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("a webhook secret must be at least 16 characters")
        return value

    @field_validator("template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None:
            from nexflow.hooks.render import parse_template  # validates the braces

            parse_template(value)
        return value


class WebhooksConfig(_Section):
    """Signed webhooks into the gateway (docs/connectors.md#webhooks)."""

    inbound: dict[str, InboundHook] = Field(default_factory=dict)

    @field_validator("inbound")
    @classmethod
    def _names(cls, value: dict[str, InboundHook]) -> dict[str, InboundHook]:
        for name in value:
            if not _HOOK_NAME.match(name):
                raise ValueError(
                    f"webhooks.inbound: {name!r} is not a valid hook name (lowercase letters, "
                    "digits, '_' and '-', up to 64 characters, starting with a letter or digit)"
                )
        return value
