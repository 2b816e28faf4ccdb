"""The in-process embedding model (extra embed-local): the real all-MiniLM-L6-v2, no fakes.

``make test`` installs the extra, so these run the model for real; the session-wide
``local_embedder`` fixture loads it once. Recall on the labelled set is in test_recall.py.
"""

import json
import math
import sys
from pathlib import Path

import pytest

from nexflow.config import load_config
from nexflow.memory import EmbedderError, build_memory, choose_embedder
from nexflow.memory.local_embedder import INSTALL_HINT, LocalEmbedder
from nexflow.testing.fresh import run_fresh

REPO = Path(__file__).resolve().parents[2]


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))  # the vectors are unit length


async def test_vectors_are_384_wide_and_unit_length(local_embedder: LocalEmbedder) -> None:
    vectors = await local_embedder.embed(["The backup job runs nightly", "", "ключ от офиса"])
    assert local_embedder.name == "local/all-MiniLM-L6-v2"
    assert [len(v) for v in vectors] == [384, 384, 384]
    for vector in vectors:
        assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, abs_tol=1e-5)


async def test_a_batch_gives_each_text_its_own_vector(local_embedder: LocalEmbedder) -> None:
    # Texts of different lengths are reordered and padded inside the batch; the answer
    # must still be in the caller's order and match embedding each text alone.
    texts = [
        "My passport expires in August 2027 and I need to renew it before the trip to Japan",
        "cat",
        "The staging environment deploys automatically from the develop branch",
    ]
    together = await local_embedder.embed(texts)
    for text, vector in zip(texts, together, strict=True):
        (alone,) = await local_embedder.embed([text])
        assert cosine(alone, vector) > 0.9999


async def test_paraphrases_are_closer_than_unrelated_texts(local_embedder: LocalEmbedder) -> None:
    pairs = [
        (
            "How often do we change the prod DB credentials?",
            "The production database password rotates every 90 days",
        ),
        ("What flowers does my mother like?", "Mum's birthday is on 2 October; she likes orchids"),
        (
            "Which language should you answer in?",
            "I prefer replies in Russian when I write in Russian",
        ),
    ]
    unrelated = "The Kubernetes cluster is hosted in Hetzner Falkenstein"
    for question, fact in pairs:
        q, f, u = await local_embedder.embed([question, fact, unrelated])
        assert cosine(q, f) > cosine(q, u) + 0.1, (question, cosine(q, f), cosine(q, u))


def test_auto_uses_the_local_model_when_it_is_installed_and_no_profile_is_named() -> None:
    choice = choose_embedder(load_config(None, {}))
    assert choice.local and choice.reason is None
    assert choice.source == "the local model all-MiniLM-L6-v2"


def test_auto_prefers_a_named_embedding_profile() -> None:
    env = {
        "NEXFLOW_LLM_MODEL": "openai/fake-model",
        "NEXFLOW_LLM_API_BASE": "http://127.0.0.1:9/v1",
        "NEXFLOW_MEMORY__PROFILE": "default",
    }
    choice = choose_embedder(load_config(None, env))
    assert not choice.local and choice.profile_name == "default" and choice.reason is None


def test_building_memory_loads_nothing_heavy(tmp_path: Path) -> None:
    # Start-up must stay fast and small: the model, torch and transformers load on the
    # first embedding, in the embedder's thread. A fresh interpreter shows what was imported.
    code = (
        "import sys\n"
        "from nexflow.config import load_config\n"
        "from nexflow.memory.wiring import build_memory, choose_embedder, make_embedder\n"
        "config = load_config(None, {'NEXFLOW_MEMORY__EMBEDDER': 'local'})\n"
        "build_memory(config)\n"
        "print(type(make_embedder(choose_embedder(config), None)).__name__)\n"
        "heavy = ('torch', 'transformers', 'sentence_transformers')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    assert run_fresh(code, tmp_path).split("\n")[:2] == ["LocalEmbedder", "[]"]


async def test_an_unknown_local_model_means_keyword_only_with_a_clear_notice(
    tmp_path: Path,
) -> None:
    env = {
        "NEXFLOW_HOME": str(tmp_path),
        "NEXFLOW_MEMORY__EMBEDDER": "local",
        "NEXFLOW_MEMORY__MODEL": "paraphrase-multilingual-MiniLM-L12-v2",  # not packaged
    }
    memory = build_memory(load_config(None, env))
    assert memory is not None
    await memory.start()
    try:
        result = await memory.search("alice", "anything", 3)
    finally:
        await memory.stop()
    assert result.mode == "keyword"
    assert result.notice is not None
    assert result.notice.startswith("keyword-only search: unknown local embedding model")
    assert "all-MiniLM-L6-v2" in result.notice


def test_a_missing_model_folder_is_named(tmp_path: Path) -> None:
    env = {"NEXFLOW_MEMORY__EMBEDDER": "local", "NEXFLOW_MEMORY__MODEL": str(tmp_path / "none")}
    reason = choose_embedder(load_config(None, env)).reason
    assert reason == f"the local embedding model folder {tmp_path / 'none'} has no config.json"


def test_without_torch_the_notice_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules is Python's own "this module cannot be imported".
    monkeypatch.setitem(sys.modules, "torch", None)
    explicit = choose_embedder(load_config(None, {"NEXFLOW_MEMORY__EMBEDDER": "local"}))
    assert explicit.reason == f"the local embedding model needs torch: {INSTALL_HINT}"
    auto = choose_embedder(load_config(None, {}))
    assert auto.reason == f"no embedding profile is configured and {explicit.reason}"


async def test_a_model_that_fails_to_load_is_reported_and_not_retried(tmp_path: Path) -> None:
    folder = tmp_path / "broken-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "no-such-architecture"}))
    embedder = LocalEmbedder(str(folder))
    try:
        with pytest.raises(EmbedderError) as first:
            await embedder.embed(["hello"])
        assert first.value.message == f"the local embedding model in {folder} did not load"
        with pytest.raises(EmbedderError) as second:
            await embedder.embed(["hello"])
        assert second.value is first.value
        assert not embedder.loaded
    finally:
        await embedder.close()
