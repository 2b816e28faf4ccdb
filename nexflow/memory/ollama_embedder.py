"""Memory's embedder for ``ollama/<model>`` profiles: Ollama's native ``/api/embed``.

Wraps :class:`~nexflow.llm.ollama.OllamaClient` (one pooled aiohttp session, batches of
:data:`~nexflow.llm.ollama.EMBED_BATCH` texts, no litellm) and translates its errors into
:class:`~nexflow.memory.errors.EmbedderError`, so memory treats Ollama like any provider:
when it is down or the model is not pulled, that one search is keyword-only and says why
(``ollama pull <model>`` for a missing model), saved items stay keyword-searchable and
are embedded by the next search that reaches Ollama.

It shares the chat client rather than using the official ``ollama`` package: one
client for both, and the package cost 0.6-0.9 ms more CPU per 64-text batch
(``bench/ollama_bench.py``; the chat figures that decided it are in
:mod:`nexflow.llm.ollama`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog

from nexflow.llm.errors import LLMError
from nexflow.llm.ollama import EMBED_BATCH, OllamaClient
from nexflow.memory.errors import EmbedderError

log = structlog.get_logger("nexflow.memory")


class OllamaEmbedder:
    """The :class:`~nexflow.memory.embedder.Embedder` shape over ``POST /api/embed``."""

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        *,
        dimensions: int | None = None,
        timeout_s: float = 60.0,
        options: dict[str, Any] | None = None,
        batch: int = EMBED_BATCH,
    ) -> None:
        self._client = OllamaClient(model, base_url, timeout_s=timeout_s, options=options)
        self._dimensions = dimensions
        self._batch = batch

    @property
    def name(self) -> str:
        """The model's name on the server (``nomic-embed-text``), as memory.db records it."""
        return self._client.name

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        try:
            vectors = await self._client.embed(
                texts, dimensions=self._dimensions, batch=self._batch
            )
        except LLMError as exc:  # the client logged the server's answer
            log.warning("embedding_failed", model=self.name, error=exc.message)
            raise EmbedderError(exc.message) from exc
        if not vectors or not all(vectors) or len({len(v) for v in vectors}) != 1:
            raise EmbedderError("Ollama answered embeddings of an unexpected shape")
        return vectors

    async def close(self) -> None:
        await self._client.aclose()
