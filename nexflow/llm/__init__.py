"""Talking to language models.

The orchestrator sees only :class:`LLMClient`. :class:`LiteLLMClient` is the real
implementation (litellm is imported on first use, off the start-up path);
:class:`ModelResolver` decides which model answers when nothing is configured.

Exceptions (:mod:`nexflow.llm.errors`): ``LLMError`` → ``ProviderUnavailable``
(retryable: connection, timeout, 5xx, 429), ``ProviderRejected`` (auth, bad
request), ``NoModelConfigured``.
"""

from nexflow.llm.client import LLMClient, LLMRequest, LLMResponse, ToolCall, Usage
from nexflow.llm.errors import LLMError, NoModelConfigured, ProviderRejected, ProviderUnavailable

__all__ = [
    "LLMClient",
    "LLMError",
    "LLMRequest",
    "LLMResponse",
    "NoModelConfigured",
    "ProviderRejected",
    "ProviderUnavailable",
    "ToolCall",
    "Usage",
]
