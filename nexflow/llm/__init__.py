"""Talking to language models.

The orchestrator sees only :class:`LLMClient`. Implementations: ``LiteLLMClient``
(litellm, imported on first use, off the start-up path), ``OpenAICompatClient``,
``OllamaClient`` (Ollama's native API) and ``LocalModelClient`` (a llama.cpp server
Nexflow supervises). ``ModelResolver`` builds them from ``llm:`` and picks one per route
(by kind, by size, with fallbacks, a breaker and the response cache; docs/llm.md).

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
