"""Errors of the LLM layer; provider SDK errors are translated into these."""

from __future__ import annotations


class LLMError(Exception):
    """A model call failed. ``message`` is written for the user."""

    retryable = False

    def __init__(self, message: str, *, model: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.model = model


class ProviderUnavailable(LLMError):
    """Connection refused, timeout, 5xx or rate limit: worth retrying later."""

    retryable = True


class ProviderRejected(LLMError):
    """The provider refused the request (bad key, unknown model, bad request)."""


class NoModelConfigured(LLMError):
    """No model is configured and no local Ollama answers."""
