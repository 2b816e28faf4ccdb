"""Inbound signed webhooks: signature schemes, replay protection, payload templates.

The HTTP route is :mod:`nexflow.web.routes_hooks`; the configuration is
``webhooks.inbound`` (:class:`nexflow.config.model.WebhooksConfig`). A payload is
untrusted content: it is only rendered into a notification, never given to a model.

Exceptions (one tree):

- :class:`HookError` — base of everything this package raises.
- :class:`SignatureError` — the request is not signed by the hook's secret (HTTP 401).
- :class:`TemplateError` — a template's braces do not balance (refused at config load).
"""

from __future__ import annotations


class HookError(Exception):
    """Base of the webhook package's errors."""


class SignatureError(HookError):
    """The request's signature (or token, or timestamp) is missing or wrong."""


class TemplateError(HookError, ValueError):
    """A template cannot be parsed (a ValueError, so pydantic reports it as a config error)."""
