"""Fixtures of the LLM tests: the fake Ollama server with three models, one without tools."""

from collections.abc import AsyncIterator

import pytest

from nexflow.testing.fake_ollama import FakeOllamaServer


@pytest.fixture
async def ollama() -> AsyncIterator[FakeOllamaServer]:
    server = FakeOllamaServer(models=["llama3.2:latest", "nomic-embed-text", "gemma:2b"])
    server.no_tools = {"gemma:2b"}
    await server.start()
    yield server
    await server.stop()
