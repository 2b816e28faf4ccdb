"""Fakes at the seams, for tests and benchmarks: real protocols on loopback.

- :mod:`nexflow.testing.fake_llm` — a scripted OpenAI-compatible chat server.
"""
