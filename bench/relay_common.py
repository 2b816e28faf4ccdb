"""What the two relays share (``relay.py`` on aiohttp, ``relay_fastapi.py`` on FastAPI):
each session's history in a dict and the streamed model call, so the two differ only in
the web framework. Imports nothing beyond the standard library: the FastAPI relay's cold
start must not pay for aiohttp's server."""

from __future__ import annotations

import argparse
import json
import time
import uuid
from typing import Any


class Relay:
    """``chat`` answers one message: (session id, reply, ``Server-Timing`` header)."""

    def __init__(self, llm_base: str) -> None:
        self._llm_base = llm_base
        self._history: dict[str, list[dict[str, str]]] = {}

    async def chat(self, http: Any, message: str, session: str | None) -> tuple[str, str, str]:
        """``http``: an ``aiohttp.ClientSession``."""
        started = time.perf_counter()
        sid = session or uuid.uuid4().hex
        messages = self._history.setdefault(
            sid, [{"role": "system", "content": "You are a relay."}]
        )
        messages.append({"role": "user", "content": message})
        call = {"model": "fake", "messages": messages[-40:], "stream": True}
        parts: list[str] = []
        llm_started = time.perf_counter()
        async with http.post(f"{self._llm_base}/chat/completions", json=call) as resp:
            async for line in resp.content:
                if line.startswith(b"data: {"):
                    for choice in json.loads(line[6:]).get("choices") or ():
                        parts.append(choice.get("delta", {}).get("content") or "")
        llm_ms = (time.perf_counter() - llm_started) * 1000
        reply = "".join(parts)
        messages.append({"role": "assistant", "content": reply})
        total_ms = (time.perf_counter() - started) * 1000
        return sid, reply, f"llm;dur={llm_ms:.3f}, total;dur={total_ms:.3f}"


def arguments(doc: str) -> argparse.Namespace:
    """A relay's command line: ``--port`` and ``--llm``."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--llm", required=True, help="the model server's /v1 base URL")
    return parser.parse_args()
