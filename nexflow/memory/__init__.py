"""Long-term memory: Markdown files the user edits, indexed for hybrid search.

See docs/memory.md. Errors: :mod:`nexflow.memory.errors`.
"""

from nexflow.memory.errors import EmbedderError, MemoryStoreError
from nexflow.memory.service import MemoryService, SearchResult
from nexflow.memory.tools import memory_tools
from nexflow.memory.wiring import build_memory, choose_embedder

__all__ = [
    "EmbedderError",
    "MemoryService",
    "MemoryStoreError",
    "SearchResult",
    "build_memory",
    "choose_embedder",
    "memory_tools",
]
