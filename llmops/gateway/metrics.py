"""Prometheus metrics of one gateway app, in its own ``CollectorRegistry`` (no global state).

Per route and target: requests by status, latency and time-to-first-token histograms, tokens in and
out, requests in flight, upstream errors by kind; and the request log's dropped records, skipped
shadow copies and the route weights in force; captured requests by route and target, feedback answers by
result; route refresh failures by target and kind, targets
serving their last-known-good, and whether the route table is degraded. Labelled children are
created once and cached, so a request costs a few dictionary lookups and lock-protected additions.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
TTFT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST
NO_LABEL = "-"


@dataclass(frozen=True, slots=True)
class TargetMetrics:
    """The labelled children of one (route, target)."""

    latency: Histogram
    ttft: Histogram
    tokens_in: Counter
    tokens_out: Counter
    in_flight: Gauge


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("route", "target")
        r = self.registry
        self.requests = Counter(
            "llmops_gateway_requests", "Requests by route, target and status.", (*labels, "status"), registry=r
        )
        self.latency = Histogram(
            "llmops_gateway_request_seconds", "Request latency.", labels, buckets=LATENCY_BUCKETS, registry=r
        )
        self.ttft = Histogram(
            "llmops_gateway_ttft_seconds", "Time to the first streamed event.", labels, buckets=TTFT_BUCKETS, registry=r
        )
        self.tokens = Counter("llmops_gateway_tokens", "Tokens by direction.", (*labels, "direction"), registry=r)
        self.in_flight = Gauge("llmops_gateway_in_flight", "Requests in flight.", labels, registry=r)
        self.upstream_errors = Counter(
            "llmops_gateway_upstream_errors", "Engine failures by kind.", (*labels, "kind"), registry=r
        )
        self.log_dropped = Counter(
            "llmops_gateway_request_log_dropped", "Request log records dropped: the queue was full.", registry=r
        )
        self.shadow_skipped = Counter(
            "llmops_gateway_shadow_skipped", "Shadow copies skipped: too many in flight.", ("route",), registry=r
        )
        self.weight = Gauge("llmops_gateway_route_weight", "Target weights in force.", labels, registry=r)
        self.resolve_failures = Counter(
            "llmops_gateway_resolve_failures",
            "Targets a route refresh could not resolve (they keep their last-known-good), by kind.",
            (*labels, "kind"),
            registry=r,
        )
        self.stale_targets = Gauge(
            "llmops_gateway_stale_targets",
            "Targets serving their last-known-good resolution because the last refresh failed for them.",
            ("route",),
            registry=r,
        )
        self.degraded = Gauge(
            "llmops_gateway_degraded", "1 while the last route refresh failed for some target, else 0.", registry=r
        )
        self.captured = Counter(
            "llmops_gateway_captured",
            "Requests captured (inputs and outputs in the request log, redacted), by route and target.",
            labels,
            registry=r,
        )
        self.feedback = Counter(
            "llmops_gateway_feedback",
            "POST /v1/feedback answers by result: recorded, unchanged (an identical repeat), rejected.",
            ("result",),
            registry=r,
        )
        self._targets: dict[tuple[str, str], TargetMetrics] = {}
        self._captured: dict[tuple[str, str], Counter] = {}
        self._requests: dict[tuple[str, str, str], Counter] = {}

    def target(self, route: str, target: str) -> TargetMetrics:
        key = (route, target)
        found = self._targets.get(key)
        if found is None:
            found = TargetMetrics(
                self.latency.labels(route, target),
                self.ttft.labels(route, target),
                self.tokens.labels(route, target, "in"),
                self.tokens.labels(route, target, "out"),
                self.in_flight.labels(route, target),
            )
            self._targets[key] = found
        return found

    def count(self, route: str, target: str, status: int) -> None:
        key = (route, target, str(status))
        child = self._requests.get(key)
        if child is None:
            child = self._requests[key] = self.requests.labels(*key)
        child.inc()

    def count_captured(self, route: str, target: str) -> None:
        key = (route, target)
        child = self._captured.get(key)
        if child is None:
            child = self._captured[key] = self.captured.labels(*key)
        child.inc()

    def expose(self) -> bytes:
        return generate_latest(self.registry)
