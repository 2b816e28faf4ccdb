"""The litellm-backed client. litellm is imported on first use, in a worker thread.

litellm is the optional extra ``nexflow[litellm]``: without it, a profile that needs it
(a hosted provider by its litellm name) fails its calls with :func:`missing`'s message.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from nexflow.llm.client import DeltaSink, LLMRequest, LLMResponse, ToolCall, Usage
from nexflow.llm.errors import LLMError, ProviderRejected, for_status, unreachable

INSTALL_HINT = "pip install 'nexflow[litellm]' (or NEXFLOW_LITELLM=1 make run)"


def installed() -> bool:
    """Whether litellm can be imported (checked without importing it)."""
    return importlib.util.find_spec("litellm") is not None


def missing(model: str) -> ProviderRejected:
    return ProviderRejected(
        f"{model} is called through litellm, which is not installed: {INSTALL_HINT}",
        model=model,
    )


@dataclass(frozen=True, slots=True)
class ModelTarget:
    """A resolved model: a litellm model string and how to reach it."""

    model: str
    api_base: str | None = None
    api_key: str | None = None
    timeout_s: float = 60.0
    max_tokens: int | None = None
    temperature: float | None = None


class LiteLLMLoader:
    """Imports litellm once, off the event loop, with the network cost-map fetch disabled."""

    def __init__(self) -> None:
        self._module: ModuleType | None = None
        self._lock = asyncio.Lock()
        self._warming: asyncio.Task[ModuleType] | None = None

    def warm(self) -> None:
        """Start importing in the background (e.g. when someone opens the chat page)."""
        if self._module is None and self._warming is None and installed():
            self._warming = asyncio.create_task(self.get(), name="nexflow-litellm-import")

    async def close(self) -> None:
        if self._warming is not None and not self._warming.done():
            self._warming.cancel()
            await asyncio.gather(self._warming, return_exceptions=True)
        module = self._module
        if module is not None:
            # litellm caches HTTP clients bound to the running loop; close them with it.
            await module.close_litellm_async_clients()
            cache = getattr(module, "in_memory_llm_clients_cache", None)
            if cache is not None and hasattr(cache, "flush_cache"):
                cache.flush_cache()

    async def get(self) -> ModuleType:
        if self._module is not None:
            return self._module
        async with self._lock:
            if self._module is None:
                self._module = await asyncio.to_thread(self._import)
        return self._module

    @staticmethod
    def _import() -> ModuleType:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        module = importlib.import_module("litellm")
        setattr(module, "suppress_debug_info", True)  # noqa: B010 - untyped module attributes
        setattr(module, "telemetry", False)  # noqa: B010
        return module


class LiteLLMClient:
    """:class:`~nexflow.llm.client.LLMClient` over ``litellm.acompletion``."""

    def __init__(self, target: ModelTarget, loader: LiteLLMLoader, stream: bool = True) -> None:
        self._target = target
        self._loader = loader
        self._stream = stream

    @property
    def model(self) -> str:
        return self._target.model

    async def complete(self, request: LLMRequest, on_delta: DeltaSink | None = None) -> LLMResponse:
        t = self._target
        if not installed():
            raise missing(t.model)
        litellm = await self._loader.get()
        kwargs: dict[str, Any] = {
            "model": t.model,
            "messages": list(request.messages),
            "timeout": t.timeout_s,
            "num_retries": 0,
        }
        if request.tools:
            kwargs["tools"] = list(request.tools)
        for key in ("api_base", "api_key", "max_tokens", "temperature"):
            if (value := getattr(t, key)) is not None:
                kwargs[key] = value
        stream = self._stream and on_delta is not None  # stream only when someone watches
        if stream:
            kwargs["stream"] = True
            kwargs["stream_options"] = {"include_usage": True}
        started = time.perf_counter()
        try:
            raw = await litellm.acompletion(**kwargs)
            if stream:
                content, calls, usage = await _collect_stream(raw, on_delta)
            else:
                content, calls, usage = _read_message(raw)
        except LLMError:
            raise
        except Exception as exc:  # litellm raises many types; all are translated here
            raise _translate(exc, t.model) from exc
        latency = time.perf_counter() - started
        cost = _cost(litellm, t.model, usage)
        return LLMResponse(
            content=content,
            model=t.model,
            tool_calls=calls,
            usage=Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0), cost),
            latency_s=latency,
        )


async def _collect_stream(
    stream: Any, on_delta: DeltaSink | None
) -> tuple[str, tuple[ToolCall, ...], Mapping[str, int]]:
    parts: list[str] = []
    calls: dict[int, dict[str, str]] = {}
    usage: Mapping[str, int] = {}
    async for chunk in stream:
        if (u := getattr(chunk, "usage", None)) is not None:
            usage = _usage_dict(u)
        for choice in getattr(chunk, "choices", None) or ():
            delta = choice.delta
            if text := getattr(delta, "content", None):
                parts.append(text)
                if on_delta is not None:
                    await on_delta(text)
            for tc in getattr(delta, "tool_calls", None) or ():
                slot = calls.setdefault(tc.index or 0, {"id": "", "name": "", "arguments": ""})
                slot["id"] = tc.id or slot["id"]
                if tc.function is not None:
                    slot["name"] = tc.function.name or slot["name"]
                    slot["arguments"] += tc.function.arguments or ""
    tool_calls = tuple(
        ToolCall(c["id"] or f"call_{i}", c["name"], c["arguments"] or "{}")
        for i, c in sorted(calls.items())
    )
    return "".join(parts), tool_calls, usage


def _read_message(resp: Any) -> tuple[str, tuple[ToolCall, ...], Mapping[str, int]]:
    message = resp.choices[0].message
    calls = tuple(
        ToolCall(tc.id, tc.function.name, tc.function.arguments or "{}")
        for tc in (message.tool_calls or ())
    )
    return message.content or "", calls, _usage_dict(getattr(resp, "usage", None))


def _usage_dict(usage: Any) -> dict[str, int]:
    if usage is None:
        return {}
    return {
        "prompt_tokens": int(getattr(usage, "prompt_tokens", 0) or 0),
        "completion_tokens": int(getattr(usage, "completion_tokens", 0) or 0),
    }


def _cost(litellm: ModuleType, model: str, usage: Mapping[str, int]) -> float:
    try:
        prompt, completion = litellm.cost_per_token(
            model=model,
            prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=usage.get("completion_tokens", 0),
        )
        return float(prompt + completion)
    except Exception:  # unknown model in the local price map: cost is unknown, not an error
        return 0.0


def _translate(exc: Exception, model: str) -> LLMError:
    status = getattr(exc, "status_code", None)
    name = type(exc).__name__
    text = str(exc).lower()
    lost = "connection error" in text or "timed out" in text or "timeout" in name.lower()
    if isinstance(exc, (TimeoutError, ConnectionError)) or status is None or lost:
        return unreachable(model)
    return for_status(int(status), model, name)
