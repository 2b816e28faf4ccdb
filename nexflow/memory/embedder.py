"""Embedding clients: texts in, one vector per text out.

:class:`OpenAICompatEmbedder` POSTs to ``<api_base>/embeddings`` (OpenAI, Ollama's ``/v1``,
vLLM, llama.cpp server, the test fake); :class:`LiteLLMEmbedder` calls ``litellm.aembedding``
for providers without an ``api_base``; :class:`~nexflow.memory.local_embedder.LocalEmbedder`
runs a model in process (extra ``embed-local``) and also implements :class:`AnnouncesLoad`.
Anything with the :class:`Embedder` shape can be plugged in instead (docs/memory.md,
"Embedders"). One ``embed`` serves queries and stored texts alike: the local e5 model
prefixes both with ``query: `` (measured better than a query/passage split here) and the
provider models in use need no prefix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import structlog

if TYPE_CHECKING:
    import aiohttp

from nexflow.memory.errors import EmbedderError

log = structlog.get_logger("nexflow.memory")


class Embedder(Protocol):
    """Turns texts into vectors of one fixed length. ``name`` identifies the model."""

    @property
    def name(self) -> str: ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...

    async def close(self) -> None: ...


@runtime_checkable
class ShortPages(Protocol):
    """An embedder whose cost grows steeply with the text (a model run in process on the
    CPU: attention is quadratic in the tokens). ``page_chars`` is how much of a paged-out
    page it embeds for page-in; a provider's embedder takes the default (paging.py)."""

    @property
    def page_chars(self) -> int: ...


@runtime_checkable
class AnnouncesLoad(Protocol):
    """An embedder with a noticeable first-use cost (a model loaded in process).

    ``loaded`` says whether the model is in memory; once it is, ``load_notice`` is one line
    for the user ("loaded the local embedding model ... (0.1 s)"). A memory tool whose call
    made the load happen adds that line to its result, so the first search says why it
    took longer.
    """

    @property
    def loaded(self) -> bool: ...

    @property
    def load_notice(self) -> str | None: ...


class OpenAICompatEmbedder:
    """``POST {api_base}/embeddings`` with one pooled aiohttp session."""

    def __init__(
        self,
        api_base: str,
        model: str,
        api_key: str | None = None,
        dimensions: int | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self._url = api_base.rstrip("/") + "/embeddings"
        self._model = model.removeprefix("openai/")
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._dimensions = dimensions
        self._timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    @property
    def name(self) -> str:
        return self._model

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        import aiohttp  # ~130 ms: paid on the first embedding, not at start-up

        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout_s), headers=self._headers
            )
        body: dict[str, Any] = {"model": self._model, "input": list(texts)}
        if self._dimensions:
            body["dimensions"] = self._dimensions
        try:
            async with self._session.post(self._url, json=body) as resp:
                if resp.status != 200:
                    log.warning("embedding_failed", status=resp.status, body=await resp.text())
                    raise EmbedderError(f"the embedding provider answered HTTP {resp.status}")
                payload = await resp.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("embedding_unreachable", url=self._url, error=repr(exc))
            raise EmbedderError("the embedding provider is unreachable") from exc
        rows = sorted(payload.get("data") or [], key=lambda row: row.get("index", 0))
        return _checked([row.get("embedding") for row in rows], len(texts))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class LiteLLMEmbedder:
    """``litellm.aembedding`` for hosted providers (litellm is imported on first use)."""

    def __init__(
        self, model: str, api_key: str | None = None, dimensions: int | None = None
    ) -> None:
        self._model = model
        self._api_key = api_key
        self._dimensions = dimensions

    @property
    def name(self) -> str:
        return self._model

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        import litellm

        extra: dict[str, Any] = {"dimensions": self._dimensions} if self._dimensions else {}
        try:
            response = await litellm.aembedding(
                model=self._model, input=list(texts), api_key=self._api_key, **extra
            )
        except Exception as exc:  # litellm raises many types; the traceback goes to the log
            log.warning("embedding_failed", model=self._model, exc_info=True)
            raise EmbedderError("the embedding provider failed") from exc
        rows = [
            row["embedding"] if isinstance(row, dict) else row.embedding for row in response.data
        ]
        return _checked(rows, len(texts))

    async def close(self) -> None:
        return None


def _checked(rows: list[Any], expected: int) -> list[list[float]]:
    if len(rows) != expected or not all(isinstance(r, list) and r for r in rows):
        raise EmbedderError("the embedding provider answered with an unexpected shape")
    width = len(rows[0])
    if any(len(r) != width for r in rows):
        raise EmbedderError("the embedding provider answered vectors of different lengths")
    return [[float(v) for v in r] for r in rows]
