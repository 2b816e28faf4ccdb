"""Nexflow: a self-hosted AI agent gateway for engineers."""

__version__ = "0.1.0"
