"""http-request: one GET or POST to an allowed host, with size and time caps.

The allowlist comes from NEXFLOW_HTTP_ALLOW (set by the admin, granted to this skill);
the input's ``allow_hosts`` can only narrow it. Host names are resolved first and every
address is checked; the connection then goes to a checked address (no second lookup, so
DNS rebinding cannot swap in a private address). Private, loopback, link-local and other
non-global addresses are refused unless an IP/CIDR entry in the allowlist covers them.
Redirects are followed by hand and each hop is checked the same way.
"""

import base64
import http.client
import ipaddress
import json
import os
import signal
import socket
import ssl
import sys
import time
from urllib.parse import urljoin, urlsplit

MAX_BYTES_DEFAULT = 256 * 1024
MAX_BYTES_LIMIT = 1024 * 1024
MAX_BODY = 1024 * 1024
TIMEOUT_DEFAULT = 10.0
TIMEOUT_LIMIT = 25.0
MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)
FORBIDDEN_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}
KEPT_HEADERS = 40


class Refused(Exception):
    """The request is not allowed (exit 2)."""


class Failed(Exception):
    """The request was allowed but did not succeed (exit 1)."""


def parse_allow(text):
    names, nets = [], []
    for raw in text.replace(",", " ").split():
        entry = raw.strip().lower().rstrip(".")
        try:
            nets.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            names.append(entry)
    return names, nets


def name_allowed(host, patterns):
    for pat in patterns:
        if pat in ("*", host):
            return True
        if pat.startswith("*.") and host.endswith(pat[1:]):
            return True
    return False


def literal_ip(host):
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class Policy:
    def __init__(self, env_text, narrow):
        self.names, self.nets = parse_allow(env_text)
        if narrow is not None:
            if not isinstance(narrow, list) or not all(isinstance(h, str) for h in narrow):
                raise Refused("'allow_hosts' must be a list of host names")
            self.narrow = [h.lower().rstrip(".") for h in narrow]
        else:
            self.narrow = None

    def check_host(self, host):
        ip = literal_ip(host)
        allowed = name_allowed(host, self.names) or (
            ip is not None and any(ip in n for n in self.nets)
        )
        if not allowed:
            raise Refused(f"host {host!r} is not on the allowlist (NEXFLOW_HTTP_ALLOW)")
        if self.narrow is not None and not name_allowed(host, self.narrow):
            raise Refused(f"host {host!r} is not in this request's allow_hosts")

    def check_address(self, host, ip):
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in n for n in self.nets):
            return
        if not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_unspecified:
            raise Refused(
                f"{host!r} resolves to {ip}, a private/loopback/link-local address; "
                "list its range in NEXFLOW_HTTP_ALLOW to allow it"
            )


def resolve(host, port, policy):
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise Failed(f"cannot resolve {host!r}: {e.strerror}") from None
    addrs = []
    for family, _, _, _, sockaddr in infos:
        ip = ipaddress.ip_address(sockaddr[0].split("%")[0])
        policy.check_address(host, ip)  # every address, not just the first
        if (family, sockaddr) not in addrs:
            addrs.append((family, sockaddr))
    if not addrs:
        raise Failed(f"{host!r} has no addresses")
    return addrs


class PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to pre-checked addresses; TLS still verifies ``host``."""

    def __init__(self, host, port, addrs, timeout, tls):
        super().__init__(host, port, timeout=timeout)
        self._addrs = addrs
        self._tls = tls

    def connect(self):
        last = None
        for family, sockaddr in self._addrs:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(sockaddr)
            except OSError as e:
                sock.close()
                last = e
                continue
            if self._tls:
                ctx = ssl.create_default_context()
                sock = ctx.wrap_socket(sock, server_hostname=self.host.strip("[]"))
            self.sock = sock
            return
        raise last or OSError("no address to connect to")


def read_body(resp, cap):
    length = resp.getheader("Content-Length")
    if length and length.isdigit() and int(length) > cap:
        raise Refused(f"the response is {int(length)} bytes; the limit is {cap}")
    data = bytearray()
    while chunk := resp.read(min(65536, cap + 1 - len(data))):
        data += chunk
        if len(data) > cap:
            raise Refused(f"the response body is larger than the limit of {cap} bytes")
    return bytes(data)


def request_body(args, method):
    headers = {}
    raw = args.get("headers") or {}
    if not isinstance(raw, dict):
        raise Refused("'headers' must be an object of strings")
    for key, value in raw.items():
        if not isinstance(value, str) or key.lower() in FORBIDDEN_HEADERS:
            raise Refused(f"header {key!r} is not allowed or not a string")
        headers[key] = value
    body = None
    if "json" in args:
        body = json.dumps(args["json"]).encode()
        headers.setdefault("Content-Type", "application/json")
    elif isinstance(args.get("body"), str):
        body = args["body"].encode()
    if body is not None and method != "POST":
        raise Refused("a body is only sent with POST")
    if body is not None and len(body) > MAX_BODY:
        raise Refused(f"the request body is over {MAX_BODY} bytes")
    return headers, body


def one_hop(url, method, headers, body, policy, cap, deadline):
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise Refused(f"only http and https URLs are allowed, not {parts.scheme or 'none'!r}")
    if parts.username or parts.password:
        raise Refused("credentials in the URL are not allowed; use a header")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise Refused(f"{url!r} has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise Refused(f"{url!r} has an invalid port") from None
    policy.check_host(host)
    addrs = resolve(host, port, policy)
    remaining = max(deadline - time.monotonic(), 0.05)
    conn = PinnedConnection(host, port, addrs, remaining, parts.scheme == "https")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request(method, target, body=body, headers=headers)
        resp = conn.getresponse()
        data = b"" if resp.status in REDIRECTS else read_body(resp, cap)
        return resp, data, host
    finally:
        conn.close()


def fetch(args, policy):
    method = str(args.get("method", "GET")).upper()
    if method not in ("GET", "POST"):
        raise Refused("'method' must be GET or POST")
    url = args.get("url")
    if not isinstance(url, str):
        raise Refused("'url' must be a string")
    cap = min(int(args.get("max_bytes", MAX_BYTES_DEFAULT)), MAX_BYTES_LIMIT)
    timeout = min(float(args.get("timeout_sec", TIMEOUT_DEFAULT)), TIMEOUT_LIMIT)
    if cap <= 0 or timeout <= 0:
        raise Refused("'max_bytes' and 'timeout_sec' must be positive")
    headers, body = request_body(args, method)
    follow = args.get("follow_redirects", True) is not False
    deadline = time.monotonic() + timeout
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)  # a hard stop for trickling servers
    hops = []
    first_host = None
    try:
        for _ in range(MAX_REDIRECTS + 1):
            resp, data, host = one_hop(url, method, headers, body, policy, cap, deadline)
            first_host = first_host or host
            location = resp.getheader("Location")
            if not (follow and resp.status in REDIRECTS and location):
                return url, resp, data, hops
            hops.append(url)
            url = urljoin(url, location)
            if resp.status == 303 or (resp.status in (301, 302) and method == "POST"):
                method, body = "GET", None
                headers.pop("Content-Type", None)
            if urlsplit(url).hostname != first_host:
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        raise Failed(f"more than {MAX_REDIRECTS} redirects")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def on_alarm(signum, frame):
    raise TimeoutError("deadline")


def main():
    try:
        args = json.load(sys.stdin)
        if not isinstance(args, dict):
            raise Refused("input must be a JSON object")
        policy = Policy(os.environ.get("NEXFLOW_HTTP_ALLOW", ""), args.get("allow_hosts"))
        url, resp, data, hops = fetch(args, policy)
    except Refused as e:
        print(f"http-request: refused: {e}", file=sys.stderr)
        return 2
    except TimeoutError:
        limit = min(float(args.get("timeout_sec", TIMEOUT_DEFAULT)), TIMEOUT_LIMIT)
        print(f"http-request: timed out after {limit:g} s", file=sys.stderr)
        return 1
    except (Failed, OSError, http.client.HTTPException, ValueError) as e:
        print(f"http-request: failed: {e}", file=sys.stderr)
        return 1
    try:
        text, encoding = data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(data).decode(), "base64"
    out = {
        "status": resp.status,
        "url": url,
        "headers": {k.lower(): v[:1000] for k, v in resp.getheaders()[:KEPT_HEADERS]},
        "body": text,
        "encoding": encoding,
        "bytes": len(data),
        "redirects": hops,
    }
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
