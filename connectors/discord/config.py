"""``connectors.discord`` in config.yml, validated once at start (no discord.py import).

Names follow the PRD's example (seed 004)::

    connectors:
      discord:
        bot_token: "${DISCORD_BOT_TOKEN}"
        guild_id: "123456789012345678"
        allowed_roles: ["admin", "dev"]
        channels: {general: "123456789012345678", dev: "987654321098765432"}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr

from nexflow.config.loader import validate_section

# YAML turns an unquoted id into an int; Discord ids are strings of digits.
Snowflake = Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int) else v)]
_SNOWFLAKE = r"^[0-9]{1,20}$"


class DiscordConfig(BaseModel):
    """``guild_id``: answer only in this server (and DMs). ``allowed_roles``: role names or
    ids a member needs; DMs are checked against membership of ``guild_id`` when it is set.
    ``channels``: name → channel id; when not empty, only these server channels (and
    threads in them) are listened to, and ``send`` accepts a name as the chat id.
    ``mention_only``: in server channels answer only when mentioned or replied to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bot_token: SecretStr
    guild_id: Annotated[Snowflake, Field(pattern=_SNOWFLAKE)] | None = None
    allowed_roles: tuple[str, ...] = ()
    channels: dict[str, Annotated[Snowflake, Field(pattern=_SNOWFLAKE)]] = Field(
        default_factory=dict
    )
    mention_only: bool = True
    api_base: str | None = None
    """REST base including the version, e.g. ``http://127.0.0.1:9000/api/v10`` (tests)."""
    gateway_url: str | None = None
    """Gateway WebSocket URL, e.g. ``ws://127.0.0.1:9000/gateway`` (tests)."""
    max_attachment_mb: float = Field(default=25.0, gt=0)
    max_ratelimit_wait_s: float = Field(default=30.0, ge=30.0)
    """Rate limits up to this long are waited out inside discord.py; longer ones fail the
    send with ``retry_after`` so the outbox reschedules it (discord.py's minimum is 30)."""
    guild_ready_timeout_s: float = Field(default=2.0, gt=0)
    """How long discord.py waits for GUILD_CREATE after READY before it reports ready."""
    stream_edits: bool = True
    """Show a reply while the model writes it, in a message edited in place."""
    stream_edit_interval_s: float = Field(default=1.0, ge=0)
    """At most one draft update per this many seconds and chat (Discord allows about five
    edits per five seconds in a channel); the final reply is always shown in full."""

    @classmethod
    def from_section(
        cls, section: Mapping[str, Any], source: str = "configuration"
    ) -> DiscordConfig:
        """Validate the raw section; problems name ``connectors.discord.<key>``."""
        return validate_section(cls, section, "connectors.discord", source)
