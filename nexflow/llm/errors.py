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


class BudgetExhausted(LLMError):
    """A hard token budget stops this call: nothing was sent to any provider.

    ``period`` is ``daily`` or ``monthly`` (the user's) or ``background`` (the day's
    background budget); ``limit`` and ``used`` are tokens. ``message`` is English; chat
    replies use the i18n key ``budget_<period>_exhausted``.
    """

    def __init__(
        self,
        message: str,
        *,
        period: str,
        limit: int,
        used: int,
        scope: str = "user",
        model: str = "",
    ) -> None:
        super().__init__(message, model=model)
        self.period = period
        self.limit = limit
        self.used = used
        self.scope = scope


_RETRYABLE_STATUS = frozenset({408, 409, 429})


def unreachable(model: str) -> ProviderUnavailable:
    return ProviderUnavailable(
        f"the model provider for {model} is unreachable (connection failed or timed out)",
        model=model,
    )


def for_status(status: int, model: str, detail: str = "") -> LLMError:
    """The error for an HTTP error status from a provider (``detail``: e.g. the SDK's name)."""
    note = f", {detail}" if detail else ""
    if status >= 500 or status in _RETRYABLE_STATUS:
        return ProviderUnavailable(
            f"the model provider for {model} answered HTTP {status}{note}", model=model
        )
    if status in (401, 403):
        return ProviderRejected(
            f"the model provider refused the API key for {model} (HTTP {status}); "
            "check NEXFLOW_LLM_API_KEY or llm.models.<name>.api_key",
            model=model,
        )
    return ProviderRejected(
        f"the model provider rejected the request for {model} (HTTP {status}{note})", model=model
    )
