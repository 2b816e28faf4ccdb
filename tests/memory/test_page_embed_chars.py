"""How much of a paged-out page is embedded: less for a model run on the CPU in process."""

from collections.abc import Sequence
from pathlib import Path

from nexflow.memory import MemoryService
from nexflow.memory.local_embedder import LocalEmbedder
from nexflow.memory.paging import EMBED_CHARS


class ProviderLike:
    name = "provider/model"

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [[1.0, 0.0] for _ in texts]

    async def close(self) -> None:
        return None


def test_the_local_model_embeds_a_shorter_page_than_a_provider(tmp_path: Path) -> None:
    local = MemoryService(tmp_path / "a.db", tmp_path, LocalEmbedder())
    provider = MemoryService(tmp_path / "b.db", tmp_path, ProviderLike())
    assert local.page_embed_chars(EMBED_CHARS) == LocalEmbedder.page_chars < EMBED_CHARS
    assert provider.page_embed_chars(EMBED_CHARS) == EMBED_CHARS
    assert MemoryService(tmp_path / "c.db", tmp_path, None).page_embed_chars(500) == 500
