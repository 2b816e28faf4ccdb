"""Which ``Host`` and ``Origin`` values the gateway answers (docs/security.md).

A page on another site can make the browser send requests to ``127.0.0.1:8080``: with
a name that resolves to loopback (DNS rebinding) the request carries that site's
``Host``; a plain cross-site form or ``fetch`` carries its ``Origin``. The guard
(:mod:`nexflow.web.asgi`) refuses both unless the configuration names them.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from nexflow.config.model import WebConfig

_DEFAULT_PORT = {"http": 80, "https": 443}
_ANY_ADDRESS = frozenset({"", "0.0.0.0", "::", "[::]"})
_SAFE_HOST = re.compile(r"^[A-Za-z0-9.\-\[\]:]+$")


def split_host(value: str) -> tuple[str, int | None]:
    """``"Example.com:8080"`` → ``("example.com", 8080)``; ``"[::1]"`` → ``("[::1]", None)``.
    A port that is not a number is kept in the name, so that nothing matches it."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        name, rest = (value[: end + 1], value[end + 1 :]) if end > 0 else (value, "")
    elif value.count(":") == 1:
        name, _, port = value.partition(":")
        rest = ":" + port
    elif ":" in value:  # a bare IPv6 address (a config value such as web.host: "::1")
        name, rest = f"[{value}]", ""
    else:
        name, rest = value, ""
    name = name.rstrip(".")
    if not rest:
        return name, None
    port = rest[1:]
    if not port.isdigit():
        return value, None
    return name, int(port)


def is_loopback_name(name: str) -> bool:
    """``localhost``, ``*.localhost``, 127.0.0.0/8, ``[::1]`` (a name from :func:`split_host`)."""
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class _Pattern:
    """A configured name: exact or ``*.suffix``, with a port or any port."""

    name: str
    port: int | None

    def matches(self, name: str, port: int | None) -> bool:
        if self.name == "*":
            return True
        if self.name.startswith("*."):
            if not name.endswith(self.name[1:]):
                return False
        elif name != self.name:
            return False
        return self.port is None or self.port == port


@dataclass(frozen=True, slots=True)
class _Origin:
    scheme: str
    host: _Pattern  # the port is the effective one (the scheme's default when omitted)


def parse_origin(value: str) -> tuple[str, str, int] | None:
    """``"https://a.example:8443"`` → ``("https", "a.example", 8443)``; None when it is not
    an http(s) origin (``null``, a path, another scheme)."""
    try:
        parts = urlsplit(value.strip().lower())
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORT or not parts.netloc or parts.path or parts.query:
        return None
    if "@" in parts.netloc:
        return None
    name, port = split_host(parts.netloc)
    if not name:
        return None
    return parts.scheme, name, port if port is not None else _DEFAULT_PORT[parts.scheme]


class BrowserPolicy:
    """The hosts and origins a gateway answers, from ``web.*`` (see config.example.yml)."""

    def __init__(self, web: WebConfig) -> None:
        hosts = [_Pattern(*split_host(entry)) for entry in web.public_hosts]
        if web.public_url:
            netloc = urlsplit(web.public_url).netloc.rpartition("@")[2]
            if netloc:
                hosts.append(_Pattern(split_host(netloc)[0], None))
        if web.host.strip().lower() not in _ANY_ADDRESS:
            hosts.append(_Pattern(split_host(web.host)[0], None))
        self._hosts = tuple(hosts)
        origins: list[_Origin] = []
        for entry in web.allowed_origins:
            scheme, _, rest = entry.lower().partition("://")
            name, port = split_host(rest)
            origins.append(_Origin(scheme, _Pattern(name, port or _DEFAULT_PORT[scheme])))
        self._origins = tuple(origins)

    def host_allowed(self, host: str | None) -> bool:
        """A request without ``Host`` (HTTP/1.0; never a browser) is allowed."""
        if host is None:
            return True
        name, port = split_host(host)
        return is_loopback_name(name) or any(p.matches(name, port) for p in self._hosts)

    def origin_allowed(self, origin: str, host: str | None) -> bool:
        """The request's own origin (what its ``Host`` says, http or https) or a configured
        one; never ``null``."""
        parsed = parse_origin(origin)
        if parsed is None:
            return False
        scheme, name, port = parsed
        if host is not None:
            own_name, own_port = split_host(host)
            if own_name == name and (own_port or _DEFAULT_PORT[scheme]) == port:
                return True
        return any(o.scheme == scheme and o.host.matches(name, port) for o in self._origins)


def csp_host(host: str | None) -> str | None:
    """The ``Host`` value when it is safe to repeat in a header (it passed the Host check)."""
    if host is None or not _SAFE_HOST.match(host):
        return None
    return host.lower()
