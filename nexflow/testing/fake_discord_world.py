"""The fake Discord's world: one guild with its roles, channels and members, DM channels,
every message (people's and the bot's) and hosted attachments, as the payloads discord.py
reads from REST answers and gateway dispatches."""

from __future__ import annotations

import itertools
import time
import uuid

from nexflow.testing.fake_discord_model import (
    CHANNEL,
    DISCORD_EPOCH_MS,
    GUILD,
    MEMBER,
    MESSAGE,
    PERMISSIONS,
    ROLE,
    USER,
    Payload,
)


class World:
    """Ids are real snowflakes (time-based), so discord.py derives sane timestamps.
    ``base_url`` is set by the server once it listens (attachment URLs use it)."""

    def __init__(self, channels: tuple[str, ...], roles: tuple[str, ...]) -> None:
        self.base_url = ""
        self._ids = itertools.count(1)
        self.users: dict[str, Payload] = {}
        self.members: dict[str, Payload] = {}
        self.bot: Payload = self._user("nexflow", bot=True)
        self.guild_id = self.snowflake()
        self.roles: dict[str, str] = {"@everyone": self.guild_id}
        self.roles.update({name: self.snowflake() for name in roles})
        self.channel_ids: dict[str, str] = {name: self.snowflake() for name in channels}
        self.channels: dict[str, Payload] = {
            cid: self._guild_channel(cid, name) for name, cid in self.channel_ids.items()
        }
        self.dms: dict[str, str] = {}  # user id -> DM channel id
        self.messages: dict[str, Payload] = {}
        self.attachments: dict[str, bytes] = {}
        self._add_member(self.bot, ())

    def snowflake(self) -> str:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return str((ms << 22) | (next(self._ids) & 0x3FFFFF))

    # -- people and places ------------------------------------------------------------

    def _user(self, username: str, *, bot: bool = False) -> Payload:
        uid = self.snowflake()
        self.users[uid] = user = {"id": uid, "username": username, "bot": bot, **USER}
        return user

    def new_user(self, username: str) -> Payload:
        return self._user(username)

    def _guild_channel(self, cid: str, name: str) -> Payload:
        return {"id": cid, "type": 0, "guild_id": self.guild_id, "name": name, **CHANNEL}

    def _add_member(self, user: Payload, roles: tuple[str, ...]) -> Payload:
        member = {"user": user, "roles": [self.roles[r] for r in roles], **MEMBER}
        self.members[user["id"]] = member
        return member

    def add_user(self, username: str, roles: tuple[str, ...] = (), *, member: bool = True) -> str:
        user = self._user(username)
        if member:
            self._add_member(user, roles)
        return str(user["id"])

    def guild(self) -> Payload:
        """The GUILD_CREATE payload."""
        roles = [
            {"id": rid, "name": name, "position": int(name != "@everyone"), **ROLE}
            for name, rid in self.roles.items()
        ]
        channels = [c for c in self.channels.values() if c.get("guild_id") == self.guild_id]
        return {
            "id": self.guild_id,
            "name": "Nexflow test guild",
            "owner_id": self.bot["id"],
            "member_count": len(self.members),
            "roles": roles,
            "channels": channels,
            "members": list(self.members.values()),
            **GUILD,
        }

    def dm_channel(self, user_id: str) -> Payload:
        if user_id not in self.dms:
            cid = self.dms[user_id] = self.snowflake()
            recipients = [self.users[user_id]]
            self.channels[cid] = {"id": cid, "type": 1, "recipients": recipients}
        return self.channels[self.dms[user_id]]

    def add_attachment(self, name: str, data: bytes) -> Payload:
        key = uuid.uuid4().hex
        self.attachments[key] = data
        url = f"{self.base_url}/attachments/{key}/{name}"
        kind = "text/plain" if name.endswith(".txt") else "application/octet-stream"
        return dict(
            id=self.snowflake(), filename=name, size=len(data), url=url, proxy_url=url,
            content_type=kind,
        )  # fmt: skip

    # -- messages and interactions ----------------------------------------------------

    def message(
        self,
        channel_id: str,
        author_id: str,
        content: str,
        *,
        mentions: list[Payload],
        attachments: list[Payload],
        reference: str | None = None,
    ) -> Payload:
        """A new message, stored for replies, clicks and edits."""
        mid = self.snowflake()
        channel = self.channels[channel_id]
        data: Payload = {
            "id": mid,
            "channel_id": channel_id,
            "author": self.users[author_id],
            "content": content,
            "mentions": mentions,
            "attachments": attachments,
            "type": 19 if reference else 0,
            **MESSAGE,
        }
        if reference is not None:
            data["message_reference"] = {"message_id": reference, "channel_id": channel_id}
            if reference in self.messages:
                data["referenced_message"] = self.messages[reference]
        if channel.get("guild_id"):
            data["guild_id"] = channel["guild_id"]
            if author_id in self.members:
                data["member"] = {k: v for k, v in self.members[author_id].items() if k != "user"}
        self.messages[mid] = data
        return data

    def interaction(self, message_id: str, custom_id: str, user_id: str) -> Payload:
        """The INTERACTION_CREATE payload of a button press on ``message_id``."""
        message = self.messages[message_id]
        channel = self.channels[message["channel_id"]]
        iid = self.snowflake()
        data: Payload = dict(
            id=iid, application_id=self.bot["id"], type=3, token=f"itoken-{iid}", version=1,
            data={"custom_id": custom_id, "component_type": 2}, channel_id=channel["id"],
            channel=channel, message=message, app_permissions=PERMISSIONS, locale="en-US",
            entitlements=[], authorizing_integration_owners={"0": self.guild_id},
            attachment_size_limit=10 * 1024 * 1024,
        )  # fmt: skip
        if channel.get("guild_id"):
            data["guild_id"] = channel["guild_id"]
            data["guild_locale"] = "en-US"
            data["context"] = 0
            data["member"] = {**self.members[user_id], "permissions": PERMISSIONS}
        else:
            data["context"] = 1
            data["user"] = self.users[user_id]
        return data
