"""A small JSON-over-HTTP client for a service the admin configured (standard library only).

Bundled skills that talk to one service (GitHub, GitLab, Prometheus, Alertmanager...)
share it::

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))
    import httpkit

    api = httpkit.Client(
        httpkit.base_url("GITHUB_API_URL"),
        service="GitHub",
        headers={"Authorization": "Bearer " + skillkit.env("GITHUB_TOKEN")},
    )
    issues = api.get("/repos/octo/demo/issues", {"state": "open", "per_page": 20})
    created = api.post("/repos/octo/demo/issues", {"title": "Broken build"})
    log = api.text("/repos/octo/demo/actions/jobs/7/logs", tail_bytes=64 * 1024)

The API, all of it:

- :func:`base_url` reads an admin-granted variable and checks it is an http(s) URL;
  ``user:password@`` in it becomes Basic auth (and is never shown in messages).
- :class:`Client` ``get / post / delete`` send and parse JSON; ``text`` reads a text
  body (a log), keeping only its last ``tail_bytes``. Every call is capped in time
  (``timeout``, one deadline for the whole call, however slowly the server sends) and in
  size (``max_bytes`` for JSON; ``text`` reads at most ``max_bytes`` and keeps the tail).
- Credentials (``headers``) are never sent on a redirect: a log download that redirects
  to storage elsewhere goes there without the token.
- Errors are :class:`HttpError` (a ``skillkit.Failed`` with ``status``) whose message
  names the service, the request and what the service said, with a hint for 401, 403,
  404 and 5xx; an unreachable service is ``skillkit.Failed``; a deadline is
  ``TimeoutError``. ``skillkit.main`` turns each into a one-line reason.
- :func:`segment` quotes one path segment (``group/project`` → ``group%2Fproject``);
  :func:`clip` shortens a text for output; :func:`split_lines` splits a log into lines
  the way the service numbers them and :func:`tail_lines` keeps its end within a size;
  :func:`log_tail` is the answer a skill gives for that end.
- :func:`answer_shape` turns a lookup on an answer of an unexpected shape into one line.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit, urlunsplit

import skillkit

DEFAULT_TIMEOUT = 20.0
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
ERROR_BODY_BYTES = 16 * 1024
USER_AGENT = "nexflow-skill/1.0"
_HINTS = {
    401: "authentication failed: is the token set and still valid?",
    403: "forbidden: the token lacks a permission or scope, or a rate limit was hit",
    404: "not found: check the names and ids (a private resource also looks missing "
    "to a token that cannot see it)",
    429: "rate limited: try again later",
}


class HttpError(skillkit.Failed):
    """The service answered with an error status (``status``); the message says why."""

    def __init__(self, message: str, status: int, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Text:
    """A text body: ``body`` (the tail when ``truncated``), ``total_bytes`` read, and
    ``first_line``, the 1-based number of the body's first line in the whole text."""

    body: str
    total_bytes: int
    truncated: bool
    first_line: int = 1


def base_url(name: str, default: str | None = None) -> str:
    """The URL in variable ``name`` (or ``default``), without a trailing slash.

    ``skillkit.Refused`` when it is unset or not an http(s) URL with a host.
    """
    value = skillkit.env(name, default)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise skillkit.Refused(f"{name} must be an http(s) URL with a host")
    if parts.query or parts.fragment:
        raise skillkit.Refused(f"{name} must not carry a query or fragment")
    return value.rstrip("/")


def segment(value: object) -> str:
    """One URL path segment, every reserved character quoted (``a/b`` → ``a%2Fb``)."""
    return quote(str(value), safe="")


def split_lines(text: str) -> list[str]:
    """Lines split at ``\\n`` only (a log's ``\\r`` progress overwrites stay inside their
    line, so line numbers match the service's), without a trailing ``\\r``."""
    parts = text.split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    return [p[:-1] if p.endswith("\r") else p for p in parts]


def tail_lines(lines: list[str], count: int, max_chars: int) -> list[str]:
    """The last ``count`` lines, each clipped to 500 characters, and no more of them than
    fit in ``max_chars`` (so a skill's output stays under its size limit)."""
    kept: list[str] = []
    room = max_chars
    for raw in reversed(lines[-count:] if count > 0 else []):
        line = clip(raw, 500)
        room -= len(line) + 1
        if room < 0:
            break
        kept.append(line)
    kept.reverse()
    return kept


def log_tail(text: Text, lines: list[str], count: int, max_chars: int) -> dict[str, Any]:
    """The answer for the end of a log: ``lines`` (``text``'s body split by the caller)
    kept by :func:`tail_lines`, where they start in the whole log and whether any was
    left out."""
    kept = tail_lines(lines, count, max_chars)
    return {
        "log": "\n".join(kept),
        "lines": len(kept),
        "first_line": text.first_line + len(lines) - len(kept),
        "truncated": text.truncated or len(lines) > len(kept),
        "bytes": text.total_bytes,
    }


@contextlib.contextmanager
def answer_shape(service: str, *more: type[Exception]) -> Iterator[None]:
    """Reading an answer that is not shaped as expected (a list where an object should
    be...) becomes one ``skillkit.Failed`` line naming ``service``."""
    try:
        yield
    except (AttributeError, TypeError, KeyError, *more) as e:
        raise skillkit.Failed(f"{service} answered in an unexpected shape ({e})") from None


def clip(text: object, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked with ``…`` when cut."""
    s = "" if text is None else str(text)
    return s if len(s) <= limit else s[: max(limit - 1, 0)] + "…"


class _Redirects(urllib.request.HTTPRedirectHandler):
    """At most 5 redirects, to http(s) only. Credentials are unredirected headers, so a
    redirect never carries them."""

    max_redirections = 5

    def redirect_request(
        self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> Any:
        if urlsplit(newurl).scheme not in ("http", "https"):
            raise skillkit.Failed(f"the service redirected to a non-http URL ({code})")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class Client:
    """JSON over HTTP to one base URL. ``headers`` carry the credentials (never logged)."""

    def __init__(
        self,
        base: str,
        *,
        service: str,
        headers: dict[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        parts = urlsplit(base)
        self._auth = dict(headers or {})
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            self._auth.setdefault("Authorization", "Basic " + base64.b64encode(pair).decode())
            netloc = parts.hostname or ""
            if ":" in netloc:
                netloc = f"[{netloc}]"
            if parts.port:
                netloc += f":{parts.port}"
            parts = parts._replace(netloc=netloc)
        self.base = urlunsplit(parts).rstrip("/")
        self.service = service
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _Redirects())

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any, params: dict[str, Any] | None = None) -> Any:
        return self.request("POST", path, params=params, body=body)

    def delete(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("DELETE", path, params=params)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        """Send one request and parse its JSON answer (``None`` for an empty body)."""
        data = None if body is None else json.dumps(body).encode()
        raw = self._send(method, path, params, data, self.max_bytes, tail=False).data
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise skillkit.Failed(
                f"{self.service} answered {method} {path} with something that is not JSON"
            ) from None

    def text(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        tail_bytes: int = 256 * 1024,
        max_bytes: int = 32 * 1024 * 1024,
    ) -> Text:
        """A text body (a log): at most ``max_bytes`` are read and the last
        ``tail_bytes`` (at most 1 MiB) kept; ``truncated`` says something was dropped."""
        tail_bytes = max(min(tail_bytes, 1024 * 1024), 0)
        got = self._send("GET", path, params, None, max_bytes, tail=True)
        cut = len(got.data) - tail_bytes if len(got.data) > tail_bytes else 0
        keep = got.data[cut:]
        dropped_lines = got.dropped_lines + got.data[:cut].count(b"\n")
        before = got.data[cut - 1 : cut] if cut else got.last_dropped
        if (cut or got.dropped_bytes) and before != b"\n":
            newline = keep.find(b"\n")  # the first kept line is partial: leave it out
            keep = keep[newline + 1 :] if newline >= 0 else b""
            dropped_lines += 1 if newline >= 0 else 0
        if not got.complete:
            keep = keep[: keep.rfind(b"\n") + 1]  # reading stopped mid-line
        return Text(
            keep.decode("utf-8", errors="replace"),
            got.total,
            truncated=bool(cut or got.dropped_bytes or not got.complete),
            first_line=dropped_lines + 1,
        )

    # -- internals ---------------------------------------------------------------

    def _url(self, path: str, params: dict[str, Any] | None) -> str:
        url = self.base + (path if path.startswith("/") else "/" + path)
        pairs: list[tuple[str, str]] = []
        for key, value in (params or {}).items():
            if value is None:
                continue
            values = value if isinstance(value, list | tuple) else [value]
            for v in values:
                pairs.append((key, _param(v)))
        return url + ("?" + urlencode(pairs) if pairs else "")

    def _send(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        data: bytes | None,
        cap: int,
        *,
        tail: bool,
    ) -> _Body:
        req = urllib.request.Request(self._url(path, params), data=data, method=method)
        req.add_header("Accept", "application/json")
        req.add_header("User-Agent", USER_AGENT)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        for key, value in self._auth.items():
            req.add_unredirected_header(key, value)
        deadline = time.monotonic() + self.timeout
        what = f"{method} {path}"
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                return _read(resp, cap, deadline, tail=tail, what=f"{self.service} {what}")
        except urllib.error.HTTPError as e:
            try:
                raise self._error(e, what) from None
            finally:
                e.close()
        except urllib.error.URLError as e:
            if isinstance(e.reason, TimeoutError):
                raise TimeoutError(f"{self.service} did not answer {what} in time") from None
            raise skillkit.Failed(
                f"cannot reach {self.service} at {self._where()}: {_reason(e.reason)}"
            ) from None
        except TimeoutError:
            raise TimeoutError(
                f"{self.service} did not answer {what} within {self.timeout:g} s"
            ) from None
        except (http.client.HTTPException, ConnectionError) as e:
            raise skillkit.Failed(
                f"{self.service} broke off {what}: {e.__class__.__name__}"
            ) from None

    def _where(self) -> str:
        parts = urlsplit(self.base)
        return f"{parts.scheme}://{parts.netloc}"

    def _error(self, e: urllib.error.HTTPError, what: str) -> HttpError:
        try:
            raw = e.read(ERROR_BODY_BYTES)
        except (OSError, http.client.HTTPException):
            raw = b""
        detail = _service_message(raw)
        hint = _HINTS.get(e.code) or (
            "the service failed; try again later" if e.code >= 500 else ""
        )
        message = f"{self.service} answered {e.code} to {what}"
        if detail:
            message += f": {clip(detail, 300)}"
        if hint:
            message += f" ({hint})"
        return HttpError(message, e.code, detail)


def _param(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _reason(reason: object) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason)


@dataclass
class _Body:
    data: bytes
    total: int = 0  # bytes received
    dropped_bytes: int = 0  # left out in front of ``data`` (tail mode)
    dropped_lines: int = 0  # newlines in what was left out
    last_dropped: bytes = b""  # the last byte left out
    complete: bool = True  # False when reading stopped at the cap (tail mode)


def _read(resp: Any, cap: int, deadline: float, *, tail: bool, what: str) -> _Body:
    """Read the body under one deadline; over ``cap`` is refused, or cut when ``tail``
    (then only the last MiB or so is kept in memory, and what was dropped is counted)."""
    length = resp.headers.get("Content-Length")
    if not tail and length and length.isdigit() and int(length) > cap:
        raise skillkit.Failed(f"{what} answered {int(length)} bytes; the limit is {cap}")
    data = bytearray()
    body = _Body(b"")
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} was still sending when the time limit ran out")
        chunk = resp.read1(65536)
        if not chunk:
            break
        body.total += len(chunk)
        data += chunk
        if body.total > cap:
            if not tail:
                raise skillkit.Failed(f"{what} answered more than {cap} bytes")
            body.complete = False
            break
        if tail and len(data) > 2 * 1024 * 1024:
            cut = len(data) - 1024 * 1024
            body.dropped_bytes += cut
            body.dropped_lines += data[:cut].count(b"\n")
            body.last_dropped = bytes(data[cut - 1 : cut])
            del data[:cut]
    body.data = bytes(data)
    return body


def _service_message(raw: bytes) -> str:
    """What the service said, from the JSON error shapes of common APIs or plain text."""
    text = raw.decode("utf-8", errors="replace").strip()
    if not text:
        return ""
    try:
        value = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:300]
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        parts = []
        for key in ("message", "error", "error_description", "errorType"):
            item = value.get(key)
            if isinstance(item, str) and item:
                parts.append(item)
            elif isinstance(item, dict | list) and item:
                parts.append(json.dumps(item)[:200])
        errors = value.get("errors")
        if isinstance(errors, list) and errors:
            parts.append(json.dumps(errors)[:200])
        if parts:
            return "; ".join(parts[:2])
    return json.dumps(value)[:300]
