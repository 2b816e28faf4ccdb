"""Memory with an ``ollama/<model>`` embedding profile: Ollama's native /api/embed, no litellm.

Against the fake Ollama server, a real HTTP server on loopback (nexflow.testing.fake_ollama);
"down" is a port where that server was stopped, then started again.
"""

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from subprocess import PIPE

import pytest

from nexflow.config import load_config
from nexflow.memory import EmbedderError, MemoryService, build_memory, choose_embedder
from nexflow.memory.ollama_embedder import OllamaEmbedder
from nexflow.memory.wiring import make_embedder
from nexflow.testing.fake_llm import FAKE_EMBEDDING_DIMENSIONS, fake_embedding
from nexflow.testing.fake_ollama import FakeOllamaServer

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def ollama() -> AsyncIterator[FakeOllamaServer]:
    server = FakeOllamaServer(models=["llama3.2:latest", "nomic-embed-text:latest"])
    await server.start()
    yield server
    await server.stop()


def ollama_env(home: Path, base_url: str, **extra: str) -> dict[str, str]:
    return {
        "NEXFLOW_HOME": str(home),
        "NEXFLOW_LLM_MODEL": "ollama/nomic-embed-text",
        "NEXFLOW_LLM_API_BASE": base_url,
        "NEXFLOW_MEMORY__EMBEDDER": "provider",
        "NEXFLOW_MEMORY__PROFILE": "default",
        **extra,
    }


async def started(memory: MemoryService | None) -> MemoryService:
    assert memory is not None
    await memory.start()
    return memory


def test_an_ollama_profile_chooses_the_native_api() -> None:
    env = ollama_env(Path("/tmp/unused"), "http://127.0.0.1:11434/v1")
    choice = choose_embedder(load_config(None, env))
    assert choice.reason is None and choice.ollama_base == "http://127.0.0.1:11434"
    assert choice.source == "profile default (Ollama's native API at http://127.0.0.1:11434)"
    embedder = make_embedder(choice, None)
    assert isinstance(embedder, OllamaEmbedder) and embedder.name == "nomic-embed-text"
    # Without an api_base the profile uses llm.ollama.base_url, as the chat client does.
    env = {**env, "NEXFLOW_LLM_API_BASE": "", "NEXFLOW_LLM__OLLAMA__BASE_URL": "http://gpu:11434"}
    assert choose_embedder(load_config(None, env)).ollama_base == "http://gpu:11434"
    # The OpenAI-compatible path stays available: client openai with Ollama's /v1.
    openai = {**env, "NEXFLOW_LLM_MODEL": "openai/nomic-embed-text", "NEXFLOW_LLM_CLIENT": "openai"}
    openai["NEXFLOW_LLM_API_BASE"] = "http://127.0.0.1:11434/v1"
    assert choose_embedder(load_config(None, openai)).ollama_base is None


async def test_embedding_with_ollama_never_imports_litellm(ollama: FakeOllamaServer) -> None:
    # A fresh interpreter shows what was imported: build memory, embed, list the modules.
    code = (
        "import asyncio, sys\n"
        "from nexflow.config import load_config\n"
        "from nexflow.memory.wiring import choose_embedder, make_embedder\n"
        "config = load_config(None, {'NEXFLOW_LLM_MODEL': 'ollama/nomic-embed-text',\n"
        f"    'NEXFLOW_LLM_API_BASE': '{ollama.base_url}',\n"
        "    'NEXFLOW_MEMORY__PROFILE': 'default'})\n"
        "embedder = make_embedder(choose_embedder(config), None)\n"
        "async def main():\n"
        "    try:\n"
        "        return await embedder.embed(['alpha', 'beta'])\n"
        "    finally:\n"
        "        await embedder.close()\n"
        "vectors = asyncio.run(main())\n"
        "print(type(embedder).__name__, len(vectors), len(vectors[0]))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('litellm', 'openai')))\n"
    )
    # The fake answers on this test's loop, so the child runs without blocking it.
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, cwd=REPO, stdout=PIPE, stderr=PIPE
    )
    stdout, stderr = await asyncio.wait_for(child.communicate(), 60)
    assert child.returncode == 0, stderr.decode()
    lines = stdout.decode().split("\n")
    assert lines[:2] == [f"OllamaEmbedder 2 {FAKE_EMBEDDING_DIMENSIONS}", "[]"]
    assert ollama.embed_requests[-1]["input"] == ["alpha", "beta"]


async def test_batches_keep_the_order_and_ask_for_dimensions(ollama: FakeOllamaServer) -> None:
    embedder = OllamaEmbedder(
        "ollama/nomic-embed-text",
        ollama.base_url,
        dimensions=64,
        options={"num_ctx": 2048},
        batch=2,
    )
    texts = ["one fish", "two fish", "red fish", "blue fish", "old fish"]
    try:
        vectors = await embedder.embed(texts)
    finally:
        await embedder.close()
    assert vectors == [fake_embedding(t, 64) for t in texts]
    sent = ollama.embed_requests
    assert [r["input"] for r in sent] == [texts[0:2], texts[2:4], texts[4:5]]
    assert {r["model"] for r in sent} == {"nomic-embed-text"}
    assert all(r["dimensions"] == 64 and r["options"] == {"num_ctx": 2048} for r in sent)


async def test_hybrid_search_with_ollama_vectors(tmp_path: Path, ollama: FakeOllamaServer) -> None:
    env = ollama_env(tmp_path, ollama.base_url, NEXFLOW_MEMORY__DIMENSIONS="128")
    memory = await started(build_memory(load_config(None, env)))
    try:
        await memory.save("ada", "The staging database lives on host stg-db-2", ["infra"])
        await memory.save("ada", "Mum's birthday is on the second of October", [])
        result = await memory.search("ada", "where does the staging database live", 2)
    finally:
        await memory.stop()
    assert result.mode == "hybrid" and result.notice is None
    assert "stg-db-2" in result.hits[0].item.text
    assert result.hits[0].vector_rank == 1
    assert all(r["dimensions"] == 128 for r in ollama.embed_requests)


async def test_a_model_not_pulled_says_ollama_pull(
    tmp_path: Path, ollama: FakeOllamaServer
) -> None:
    env = ollama_env(tmp_path, ollama.base_url, NEXFLOW_LLM_MODEL="ollama/mxbai-embed-large")
    memory = await started(build_memory(load_config(None, env)))
    try:
        saved = await memory.save("ada", "The VPN password rotates every month", [])
        result = await memory.search("ada", "VPN password", 3)
    finally:
        await memory.stop()
    assert result.mode == "keyword" and result.notice is not None
    assert result.notice.startswith("keyword-only search: vector search skipped: the model ")
    assert "run `ollama pull mxbai-embed-large` there" in result.notice
    assert [h.item.id for h in result.hits] == [saved.id]


async def test_ollama_down_means_keyword_only_then_vectors_when_it_is_back(
    tmp_path: Path,
) -> None:
    server = FakeOllamaServer(models=["nomic-embed-text"])
    await server.start()
    port = server.port
    await server.stop()  # nothing listens on the port now
    memory = await started(
        build_memory(load_config(None, ollama_env(tmp_path, f"http://127.0.0.1:{port}")))
    )
    back = FakeOllamaServer(models=["nomic-embed-text"], port=port)
    try:
        saved = await memory.save("ada", "The boat is called Seagull", ["boat"])
        down = await memory.search("ada", "what is the boat called", 3)
        assert down.mode == "keyword" and down.notice is not None
        assert "is not answering (is `ollama serve` running?)" in down.notice
        assert [h.item.id for h in down.hits] == [saved.id]  # saved, and found by keyword
        assert memory.embedder_name == "nomic-embed-text"
        assert await memory.embed(["page text"]) is None  # paging: no vector, no failure

        await back.start()
        up = await memory.search("ada", "what is the boat called", 3)
        assert up.mode == "hybrid" and up.notice is None
        assert up.hits[0].item.id == saved.id and up.hits[0].vector_rank == 1
        embedded = [t for r in back.embed_requests for t in r["input"]]
        assert "The boat is called Seagull #boat"[:20] in " ".join(embedded)
        assert await memory.run_in_db(memory.index.vec.unembedded, "ada", 10) == []
    finally:
        await memory.stop()
        await back.stop()


async def test_errors_are_embedder_errors_with_a_message_for_the_user(
    ollama: FakeOllamaServer,
) -> None:
    missing = OllamaEmbedder("ollama/missing", ollama.base_url)
    down = OllamaEmbedder("ollama/nomic-embed-text", "http://127.0.0.1:9")  # discard port
    try:
        with pytest.raises(EmbedderError, match=r"ollama pull missing"):
            await missing.embed(["x"])
        with pytest.raises(EmbedderError, match=r"ollama serve"):
            await down.embed(["x"])
        assert await down.embed([]) == []  # nothing to embed: no request at all
    finally:
        await missing.close()
        await down.close()
