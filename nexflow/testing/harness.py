"""Run a real gateway (uvicorn on loopback, real litellm) against the fake LLM.

``async with GatewayHarness(tmp_path) as gw:`` gives ``gw.url``, ``gw.http`` (an httpx
client), ``gw.llm`` (the :class:`~nexflow.testing.fake_llm.FakeLLMServer`) and
``gw.app`` (the composition root's :class:`~nexflow.app.Application`). ``gw.chat(text)``
pushes a message in and returns the reply JSON. ``client`` picks the LLM client
(``litellm`` by default, ``openai`` for the built-in OpenAI-compatible one).
``storage_url`` puts the gateway's database elsewhere than ``<home>/nexflow.db`` (a
``postgresql://`` URL runs it on Postgres), as ``NEXFLOW_STORAGE__URL`` would.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn

from nexflow.app import Application, build_application
from nexflow.config import load_config
from nexflow.config.edit import ConfigFile
from nexflow.observability.logging import LogHub, configure_logging
from nexflow.testing.fake_llm import FakeLLMServer
from nexflow.tools.base import ToolContext


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GatewayHarness:
    def __init__(
        self,
        home: Path,
        *,
        env: dict[str, str] | None = None,
        config_file: Path | None = None,
        with_llm: bool = True,
        token: str | None = None,
        client: str = "litellm",
        storage_url: str | None = None,
    ) -> None:
        self.home = home
        self.llm = FakeLLMServer()
        self._with_llm = with_llm
        self._env = dict(env or {})
        self._config_file = config_file
        self._token = token
        self._client = client
        if storage_url is not None:
            self._env.setdefault("NEXFLOW_STORAGE__URL", storage_url)
        self.logs = LogHub()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app: Application | None = None
        self.http: httpx.AsyncClient = httpx.AsyncClient(base_url=self.url, timeout=30)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> GatewayHarness:
        env = {"NEXFLOW_HOME": str(self.home), "NEXFLOW_LLM__OLLAMA__PROBE": "false", **self._env}
        # Keyword-only memory unless a test asks: the default (auto) would load the local
        # embedding model, where installed, on the first search (seconds, ~500 MB).
        env.setdefault("NEXFLOW_MEMORY__EMBEDDER", "none")
        if self._with_llm:
            base = await self.llm.start()
            env.setdefault("NEXFLOW_LLM_MODEL", "openai/fake-model")
            env.setdefault("NEXFLOW_LLM_API_BASE", base)
            env.setdefault("NEXFLOW_LLM_API_KEY", "test-key")
            env.setdefault("NEXFLOW_LLM_CLIENT", self._client)
        if self._token:
            env["NEXFLOW_GATEWAY_TOKEN"] = self._token
            self.http.headers["Authorization"] = f"Bearer {self._token}"
        config = load_config(self._config_file, env)
        configure_logging("warning", "json", self.logs)
        self.app = build_application(config, self.logs)
        self.app.web.state.config_file = ConfigFile(self._config_file, env)
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.app.web,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="on",
                access_log=False,
            )
        )
        self._task = asyncio.create_task(self._server.serve())
        for _ in range(200):
            if self._server.started:
                break
            if self._task.done():
                await self._task
            await asyncio.sleep(0.02)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.http.aclose()
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            await self._task
        await self.llm.stop()

    async def owner_tools(self) -> set[str]:
        """The names of the tools a turn of the web owner is offered now."""
        assert self.app is not None
        found = await self.app.storage.find_user("web", "owner")
        user_id = found[0] if found else ""
        ctx = ToolContext(user_id=user_id, session_id="", channel="web", chat_id="")
        return {t.spec.name for t in self.app.tools.tools_for(ctx)}

    async def chat(self, message: str, session: str | None = None, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"message": message, **extra}
        if session is not None:
            body["session"] = session
        resp = await self.http.post("/api/v1/chat", json=body)
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data
