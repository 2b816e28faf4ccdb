"""The CLI's one way to ask the running gateway over loopback (``nexflow inbox retry``,
``nexflow tasks dead|retry``): the bound port, the gateway token when set, JSON bodies."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nexflow.config.model import NexflowConfig


def ask_gateway(
    config: NexflowConfig,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    timeout_s: float = 15.0,
) -> tuple[int, str] | None:
    """(status, body) from the running gateway, or None when none answers. A ``body``
    makes it a POST."""
    host = config.web.host if config.web.host not in ("0.0.0.0", "::") else "127.0.0.1"
    url = f"http://{host}:{config.web.port}{path}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method="GET" if body is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    if config.web.token is not None:
        request.add_header("Authorization", f"Bearer {config.web.token.get_secret_value()}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, OSError):
        return None
