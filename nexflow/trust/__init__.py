"""Untrusted content never acts on its own (SPEC section 6, "Trust model").

* :mod:`~nexflow.trust.effects`: the one place that decides a tool call's effects
  (write, egress) and whether its output is untrusted (:func:`effects_of`).
* :mod:`~nexflow.trust.gate`: :class:`TrustGate`, which asks the user before a write or
  egress that follows untrusted output in the same turn, and extends the turn's taint.
* :mod:`~nexflow.trust.framing`: tool output reaches the model inside a nonce'd frame
  whose content cannot forge a frame or a chat-template token.

Taint that persists (memory notes written in a tainted turn) is recorded by the tools
that store things; see docs/trust.md. This package depends only on
:mod:`nexflow.tools.base` and :mod:`nexflow.i18n` (the standard library besides), so a
benchmark can import it without the gateway's dependencies. No exceptions of its own.
"""

from nexflow.trust.effects import DynamicEffects, Effects, effects_of, skill_effects
from nexflow.trust.framing import FRAME_INSTRUCTIONS, frame, neutralise, untrusted_sources
from nexflow.trust.gate import Decision, TrustGate

__all__ = [
    "FRAME_INSTRUCTIONS",
    "Decision",
    "DynamicEffects",
    "Effects",
    "TrustGate",
    "effects_of",
    "frame",
    "neutralise",
    "skill_effects",
    "untrusted_sources",
]
