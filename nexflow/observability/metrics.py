"""Every metric Nexflow exports, created on a registry the composition root owns."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.messages_in = Counter(
            "nexflow_messages_in_total",
            "Messages accepted, by channel",
            ["channel"],
            registry=registry,
        )
        self.messages_out = Counter(
            "nexflow_messages_out_total",
            "Messages delivered, by channel",
            ["channel"],
            registry=registry,
        )
        self.messages_rejected = Counter(
            "nexflow_messages_rejected_total",
            "Messages refused before processing, by reason",
            ["channel", "reason"],
            registry=registry,
        )
        self.delivery_failures = Counter(
            "nexflow_delivery_failures_total",
            "Failed delivery attempts, by channel and whether they will be retried",
            ["channel", "final"],
            registry=registry,
        )
        self.llm_calls = Counter(
            "nexflow_llm_calls_total",
            "LLM calls, by model and outcome",
            ["model", "outcome"],
            registry=registry,
        )
        self.llm_latency = Histogram(
            "nexflow_llm_latency_seconds",
            "LLM call latency",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.llm_tokens = Counter(
            "nexflow_llm_tokens_total",
            "Tokens, by model and direction",
            ["model", "direction"],
            registry=registry,
        )
        self.llm_cost = Counter(
            "nexflow_llm_cost_usd_total", "Cost of LLM calls in USD", ["model"], registry=registry
        )
        self.tool_calls = Counter(
            "nexflow_tool_calls_total",
            "Tool calls, by tool and outcome",
            ["tool", "outcome"],
            registry=registry,
        )
        self.queue_depth = Gauge(
            "nexflow_bus_queue_depth",
            "Messages waiting or in progress on the bus",
            registry=registry,
        )
        self.turn_latency = Histogram(
            "nexflow_turn_seconds",
            "Time from acceptance to reply committed",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.errors = Counter(
            "nexflow_errors_total", "Errors, by component", ["component"], registry=registry
        )
