"""The server's Prometheus metrics (prometheus_client), one registry per app.

Request metrics are labelled by route template (``/v1/chat/completions``), never by the raw path: a path the
server does not serve is counted as ``unmatched``, so random URLs cannot grow the label set.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from assistant.core.answer import Answer

LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
UNMATCHED = "unmatched"
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """Counters, gauges and a latency histogram for one app, rendered in the Prometheus text format."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("assistant_requests", "HTTP requests by route template and status.",
                                ["path", "status"], registry=self.registry)
        self.latency = Histogram("assistant_request_seconds", "Time to the response's first byte.", ["path"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.routes = Counter("assistant_routes", "Answered turns by route.", ["route"], registry=self.registry)
        self.escalations = Counter("assistant_escalations", "Turns answered (also) by the large model.",
                                   registry=self.registry)
        self.tokens = Counter("assistant_tokens", "Tokens processed, by model tier.", ["tier"],
                              registry=self.registry)
        self.queue_depth = Gauge("assistant_queue_depth", "Requests waiting for a slot, by queue.", ["queue"],
                                 registry=self.registry)

    def record_answer(self, answer: Answer) -> None:
        """Count one answered turn: its route, escalation and tokens per tier."""
        self.routes.labels(route=answer.route).inc()
        if answer.escalated:
            self.escalations.inc()
        for call in answer.usage:
            self.tokens.labels(tier=call.tier).inc(call.prompt_tokens + call.completion_tokens)

    def render(self) -> bytes:
        """Every metric in the Prometheus text exposition format."""
        return generate_latest(self.registry)
