"""The HTTP/WebSocket API (FastAPI) — the web connector's server side.

Errors are answered as ``{"error": {"code": ..., "message": ...}}`` with a fitting
status; nothing internal (tracebacks, exception text) reaches the client.
"""

from nexflow.web.app import WebServices, create_app

__all__ = ["WebServices", "create_app"]
