"""Structured logs (structlog, JSON lines) and Prometheus metrics on an injected registry."""

from nexflow.observability.logging import LogHub, configure_logging
from nexflow.observability.metrics import Metrics

__all__ = ["LogHub", "Metrics", "configure_logging"]
