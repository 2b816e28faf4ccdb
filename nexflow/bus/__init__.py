"""The in-process message bus: typed events, middleware chain, per-session ordering.

Exceptions: :class:`Rejected` and its subclasses say why an inbound event was not
accepted (``NotAllowed``, ``RateLimited``, ``Overloaded``, ``UnknownSession``,
``InvalidMessage``); each carries a ``user_message`` safe to show.
"""

from nexflow.bus.bus import Bus
from nexflow.bus.errors import (
    InvalidMessage,
    NotAllowed,
    Overloaded,
    RateLimited,
    Rejected,
    UnknownSession,
)
from nexflow.bus.events import InboundEvent, Outbound, TextOut

__all__ = [
    "Bus",
    "InboundEvent",
    "InvalidMessage",
    "NotAllowed",
    "Outbound",
    "Overloaded",
    "RateLimited",
    "Rejected",
    "TextOut",
    "UnknownSession",
]
