"""The live event stream of GraphStudio (``/ws/events``): its frames and its hub.

Every frame is about something one user owns (a panel, a workspace, a patch, a file),
and goes only to that user's sockets. :class:`EventHub` keeps a bounded queue per socket;
publishing never blocks and a socket that falls behind loses frames (the browser can
always re-read the objects over HTTP).

The hub listens to the panel service (:meth:`PanelService.add_listener`): after every
committed change it renders the panel once, off the committing call, and sends the same
``panel.updated`` frame to every socket of the owner. Changes that arrive while a render
is running are coalesced into one more render, so frames go out in version order and a
burst of changes costs at most two renders.

Other areas publish with :meth:`EventHub.publish` (patch events, file commits); the hub
reaches them through ``WebServices.events``, built by the composition root.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

import structlog
from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter, ValidationError

from nexflow.bus.streams import StreamRelay
from nexflow.panels.runtime.snapshot import notices_of

if TYPE_CHECKING:
    from nexflow.panels.runtime import PanelService
    from nexflow.panels.runtime.versions import Change, PanelRecord
    from nexflow.workspace.api import Patch, PatchHooks

log = structlog.get_logger("nexflow.web.events")
QUEUE_SIZE = 512


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PanelSummary(_Frame):
    """A panel as ``GET /api/v1/panels`` lists it."""

    id: str
    title: str
    template: str
    version: int
    workspace: str
    state: dict[str, JsonValue]
    tools: list[str]
    created_at: float
    updated_at: float


class PanelUpdated(_Frame):
    type: Literal["panel.updated"] = "panel.updated"
    panel_id: str
    version: int
    state: dict[str, JsonValue]
    render: dict[str, JsonValue]  # the RenderTree JSON, as GET /api/v1/panels/{id} "render"
    binding_errors: list[str] = Field(default_factory=list)


class PanelCreated(_Frame):
    type: Literal["panel.created"] = "panel.created"
    panel: PanelSummary


class PanelDeleted(_Frame):
    type: Literal["panel.deleted"] = "panel.deleted"
    panel_id: str
    workspace: str = ""


class Toast(_Frame):
    type: Literal["toast"] = "toast"
    panel_id: str
    message: str


PatchEventKind = Literal["proposed", "merged", "conflict", "rejected"]


class PatchEvent(_Frame):
    type: Literal["patch"] = "patch"
    event: PatchEventKind
    patch: dict[str, JsonValue]  # Patch.to_json()


class FileCommitted(_Frame):
    type: Literal["file.committed"] = "file.committed"
    workspace: str
    path: str
    sha: str


class LayoutUpdated(_Frame):
    type: Literal["layout.updated"] = "layout.updated"
    workspace: str


class Pong(_Frame):
    type: Literal["pong"] = "pong"


class ErrorFrame(_Frame):
    type: Literal["error"] = "error"
    code: str
    message: str


EventFrame = Annotated[
    PanelUpdated
    | PanelCreated
    | PanelDeleted
    | Toast
    | PatchEvent
    | FileCommitted
    | LayoutUpdated
    | Pong
    | ErrorFrame,
    Field(discriminator="type"),
]
EVENT_FRAME: TypeAdapter[EventFrame] = TypeAdapter(EventFrame)


class ClientPing(_Frame):
    type: Literal["ping"]


class ClientAuth(_Frame):
    model_config = ConfigDict(extra="ignore")
    type: Literal["auth"]
    token: str = ""


ClientFrame = Annotated[ClientPing | ClientAuth, Field(discriminator="type")]
CLIENT_FRAME: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)

Queue = asyncio.Queue[dict[str, Any]]


def panel_summary(service: PanelService, record: PanelRecord) -> PanelSummary:
    return PanelSummary(
        id=record.id,
        title=record.title,
        template=record.template,
        version=record.version,
        workspace=record.workspace,
        state=dict(record.state),
        tools=[t.spec.name for t in service.tools_of(record.id)],
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


class EventHub:
    """Per-user fan-out of :data:`EventFrame` s; also a panel service listener.

    Across replicas a relay (:mod:`nexflow.gateway.stream_relay`) carries each frame to
    the owner's sockets on the other replicas, which validate it again and hand it only
    to that owner's sockets."""

    relay_namespace = "events"

    def __init__(self, panels: PanelService | None = None, queue_size: int = QUEUE_SIZE) -> None:
        self._panels = panels
        self._queue_size = queue_size
        self._subscribers: dict[str, set[Queue]] = {}
        self._renders: dict[str, asyncio.Task[None]] = {}
        self._dirty: set[str] = set()
        self._relay: StreamRelay | None = None

    def attach_relay(self, relay: StreamRelay) -> None:
        self._relay = relay

    @classmethod
    def listening_to(cls, panels: PanelService, patches: PatchHooks | None = None) -> EventHub:
        """A hub the panel service tells about every change, and the workspaces about every
        patch proposed or decided (the composition root's)."""
        hub = cls(panels)
        panels.add_listener(hub)
        if patches is not None:
            patches.notices.append(hub.patch_notice)
        return hub

    def patch_notice(self, event: str, patch: Patch) -> None:
        """A patch was proposed, merged, refused by a conflict or rejected: its owner's
        tabs hear it (the patch list and the chat's patch cards follow)."""
        kind = cast(PatchEventKind, event)
        self.publish(patch.user_id, PatchEvent(event=kind, patch=patch.to_json()))

    # -- sockets ------------------------------------------------------------------------

    def subscribe(self, owner: str) -> Queue:
        queue: Queue = asyncio.Queue(self._queue_size)
        subs = self._subscribers.setdefault(owner, set())
        if not subs and self._relay is not None:
            self._relay.watch(owner)
        subs.add(queue)
        return queue

    async def ready(self, owner: str) -> None:
        """After :meth:`subscribe`: wait until frames published on other replicas reach
        the queue (at once on a single gateway)."""
        if self._relay is not None:
            await self._relay.ready(owner)

    def unsubscribe(self, owner: str, queue: Queue) -> None:
        subs = self._subscribers.get(owner)
        if subs is not None:
            subs.discard(queue)
            if not subs:
                del self._subscribers[owner]
                if self._relay is not None:
                    self._relay.unwatch(owner)

    def listening(self, owner: str) -> bool:
        """A socket of ``owner`` is open, here or on another replica."""
        return owner in self._subscribers or (
            self._relay is not None and self._relay.watched(owner)
        )

    def publish(self, owner: str, frame: EventFrame) -> None:
        """Send ``frame`` to every socket of ``owner`` (serialised once); never blocks."""
        relay = self._relay if self._relay is not None and self._relay.watched(owner) else None
        if owner not in self._subscribers and relay is None:
            return
        data = frame.model_dump(mode="json")
        self._put(owner, data)
        if relay is not None:
            relay.publish(owner, data)

    def deliver_remote(self, owner: str, data: dict[str, Any]) -> None:
        """A frame for ``owner`` published on another replica: validated against
        :data:`EventFrame` (typed at the edge), then handed to ``owner``'s sockets here."""
        try:
            frame = EVENT_FRAME.validate_python(data)
        except ValidationError:
            log.warning("event_frame_invalid", frame_type=str(data.get("type"))[:40])
            return
        self._put(owner, frame.model_dump(mode="json"))

    def _put(self, owner: str, data: dict[str, Any]) -> None:
        for queue in self._subscribers.get(owner, ()):
            if queue.full():  # the oldest frame goes: the newest state matters most
                queue.get_nowait()
            queue.put_nowait(data)

    async def close(self) -> None:
        tasks = list(self._renders.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._renders.clear()

    # -- PanelObserver --------------------------------------------------------------------

    async def before_create(self, owner: str, workspace: str) -> None:
        return None

    async def committed(self, record: PanelRecord, change: Change) -> None:
        if not self.listening(record.owner) or self._panels is None:
            return
        if change.kind == "create":
            self.publish(record.owner, PanelCreated(panel=panel_summary(self._panels, record)))
        for message in notices_of(change.effects):
            self.publish(record.owner, Toast(panel_id=record.id, message=message))
        self._schedule_render(record)

    async def deleted(self, record: PanelRecord) -> None:
        self.publish(record.owner, PanelDeleted(panel_id=record.id, workspace=record.workspace))

    def _schedule_render(self, record: PanelRecord) -> None:
        running = self._renders.get(record.id)
        if running is not None and not running.done():
            self._dirty.add(record.id)  # the running loop renders once more
            return
        task = asyncio.create_task(self._render_loop(record.id, record.owner))
        self._renders[record.id] = task

    async def _render_loop(self, panel_id: str, owner: str) -> None:
        try:
            while True:
                self._dirty.discard(panel_id)
                await self._publish_render(panel_id, owner)
                if panel_id not in self._dirty:
                    return
        finally:
            self._renders.pop(panel_id, None)

    async def _publish_render(self, panel_id: str, owner: str) -> None:
        assert self._panels is not None
        try:
            rendered = await self._panels.render(panel_id)
        except Exception:  # deleted meanwhile, sandbox gone: the next change tries again
            log.info("panel_event_not_rendered", panel=panel_id, exc_info=True)
            return
        record = rendered.record
        self.publish(
            owner,
            PanelUpdated(
                panel_id=panel_id,
                version=record.version,
                state=dict(record.state),
                render=rendered.tree.model_dump(mode="json"),
                binding_errors=list(rendered.binding_errors),
            ),
        )
