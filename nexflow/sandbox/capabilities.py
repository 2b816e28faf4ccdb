"""Host side of the guest's capability objects (``$fs.read``, ``$http.get``).

Every request is checked against the call's ``Capabilities``. A refused request
is answered with an error the JS code sees, and is also remembered so the call
fails with ``CapabilityDenied`` even if the handler catches the JS error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import httpx

from nexflow.sandbox.errors import CapabilityDenied
from nexflow.sandbox.models import Capabilities, JSONObject, JSONValue


class _Refused(Exception):
    """A request the guest may see fail (missing file, HTTP error)."""


class HostCalls:
    """Answers one sandboxed call's host requests. Not shared between calls."""

    def __init__(self, capabilities: Capabilities, deadline: float) -> None:
        self._caps = capabilities
        self._deadline = deadline
        self._calls = 0
        self.denied: CapabilityDenied | None = None
        self._ops: dict[str, Callable[[JSONObject], JSONValue]] = {
            "fs.read": self._fs_read,
            "http.get": self._http_get,
        }

    def answer(self, request: bytes) -> bytes:
        """Turn one request JSON into a reply JSON; never raises for guest input."""
        try:
            value = self._dispatch(request)
        except CapabilityDenied as e:
            if self.denied is None:
                self.denied = e
            return _reply(False, f"CapabilityDenied: {e}")
        except _Refused as e:
            return _reply(False, str(e))
        return json.dumps({"ok": True, "value": value}).encode()

    def _dispatch(self, request: bytes) -> JSONValue:
        self._calls += 1
        if self._calls > self._caps.max_host_calls:
            raise CapabilityDenied(f"more than {self._caps.max_host_calls} host calls in one run")
        try:
            body = json.loads(request)
        except ValueError as e:
            raise _Refused("malformed host request") from e
        op = body.get("op") if isinstance(body, dict) else None
        handler = self._ops.get(op) if isinstance(op, str) else None
        if handler is None or not isinstance(body, dict):
            raise _Refused(f"unknown host operation {op!r}")
        return handler(body)

    def _fs_read(self, body: JSONObject) -> JSONValue:
        raw = body.get("path")
        if not isinstance(raw, str):
            raise _Refused("$fs.read(path) needs a string path")
        root = self._caps.read_root
        if root is None or not self._caps.read_paths:
            raise CapabilityDenied(f"reading files is not granted (asked for {raw!r})")
        rel = PurePosixPath(raw)
        if rel.is_absolute() or ".." in rel.parts or not raw:
            raise CapabilityDenied(f"{raw!r} is not a relative path inside the workspace")
        if not _path_granted(rel, self._caps.read_paths):
            raise CapabilityDenied(f"reading {raw!r} is not granted")
        base = root.resolve()
        target = (base / Path(*rel.parts)).resolve()
        if not target.is_relative_to(base):
            raise CapabilityDenied(f"{raw!r} resolves outside the workspace")
        try:
            with target.open("rb") as fh:
                data = fh.read(self._caps.max_read_bytes + 1)
        except FileNotFoundError as e:
            raise _Refused(f"no such file: {raw}") from e
        except OSError as e:
            raise _Refused(f"cannot read {raw}: {e.strerror}") from e
        if len(data) > self._caps.max_read_bytes:
            raise _Refused(f"{raw} is larger than {self._caps.max_read_bytes} bytes")
        return data.decode("utf-8", errors="replace")

    def _http_get(self, body: JSONObject) -> JSONValue:
        url = body.get("url")
        if not isinstance(url, str):
            raise _Refused("$http.get(url) needs a string url")
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in {"http", "https"} or not host:
            raise CapabilityDenied(f"only http(s) URLs with a host may be fetched, not {url!r}")
        if host not in {h.lower() for h in self._caps.http_hosts}:
            raise CapabilityDenied(f"HTTP access to {host!r} is not granted")
        timeout = min(self._caps.http_timeout_s, self._deadline - time.monotonic())
        if timeout <= 0:
            raise _Refused("no wall time left for an HTTP request")
        limit = self._caps.max_read_bytes
        try:
            with (
                httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client,
                client.stream("GET", url) as response,
            ):
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise _Refused(f"response from {host} is larger than {limit} bytes")
                    chunks.append(chunk)
        except httpx.HTTPError as e:
            raise _Refused(f"HTTP GET {url} failed: {type(e).__name__}") from e
        return {
            "status": response.status_code,
            "headers": {"content-type": response.headers.get("content-type", "")},
            "text": b"".join(chunks).decode("utf-8", errors="replace"),
        }


def _path_granted(rel: PurePosixPath, grants: frozenset[str]) -> bool:
    for grant in grants:
        if grant.endswith("/"):
            folder = grant.rstrip("/")
            if folder in {"", "."} or rel.is_relative_to(PurePosixPath(folder)):
                return True
        elif PurePosixPath(grant) == rel:
            return True
    return False


def _reply(ok: bool, error: str) -> bytes:
    return json.dumps({"ok": ok, "error": error}).encode()
