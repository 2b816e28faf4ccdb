"""JSON encoding of the records kept in text columns."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from nexflow.bus.events import Attachment, InboundEvent, Outbound, OutboundEnvelope


def dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def dump_event(event: InboundEvent) -> str:
    return dump(dataclasses.asdict(event))


def load_event(text: str) -> InboundEvent:
    raw = json.loads(text)
    raw["attachments"] = tuple(Attachment(**a) for a in raw.get("attachments", ()))
    return InboundEvent(**raw)


def dump_outbound(out: Outbound) -> str:
    return OutboundEnvelope(item=out).model_dump_json()


def load_outbound(text: str) -> Outbound:
    return OutboundEnvelope.model_validate_json(text).item
