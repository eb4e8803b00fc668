"""Prometheus gauges of a running rollout, served by the controller (``llmops rollout start --metrics-port``).

Metrics (own :class:`~prometheus_client.CollectorRegistry`):

- ``llmops_rollout_status{route}``: 0 running, 1 succeeded, 2 failed (or aborted), 3 paused;
- ``llmops_rollout_step{route}``: the current step, 1-based;
- ``llmops_rollout_weight{route,target}``: the weight the controller set for each arm;
- ``llmops_rollout_check{route,check,verdict}``: 1 for each check's verdict at the newest look
  (``pass``, ``fail``, ``inconclusive``), 0 for the other verdicts;
- ``llmops_rollout_check_p_value{route,check}`` and ``llmops_rollout_samples{route,arm}``.
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Gauge, start_http_server

from llmops.rollout.state import STATUS_VALUES, RolloutState

VERDICTS = ("pass", "fail", "inconclusive")


class RolloutExporter:
    """Gauges updated from the controller's state (an :class:`~llmops.rollout.controller.Observer`)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.status = Gauge(
            "llmops_rollout_status", "0 running, 1 succeeded, 2 failed, 3 paused", ("route",), registry=r
        )
        self.step = Gauge("llmops_rollout_step", "Current step (1-based)", ("route",), registry=r)
        self.weight = Gauge("llmops_rollout_weight", "Weight set by the rollout", ("route", "target"), registry=r)
        self.check = Gauge("llmops_rollout_check", "1 for the verdict of each check at the newest look",
                           ("route", "check", "verdict"), registry=r)  # fmt: skip
        self.p_value = Gauge("llmops_rollout_check_p_value", "Always-valid p-value of each check",
                             ("route", "check"), registry=r)  # fmt: skip
        self.samples = Gauge("llmops_rollout_samples", "Requests per arm in the step's window", ("route", "arm"),
                             registry=r)  # fmt: skip
        self._lock = threading.Lock()

    def update(self, rollout_id: str, status: str, state: RolloutState) -> None:
        with self._lock:
            route = state.route
            self.status.labels(route).set(STATUS_VALUES.get(status, 2))
            self.step.labels(route).set(state.step + 1)
            share = 0 if state.phase == "done" or status in ("failed", "aborted") else state.current.weight
            for target, weight in state.weights(share).items():
                self.weight.labels(route, target).set(weight)
            for result in state.results:
                for verdict in VERDICTS:
                    self.check.labels(route, result["check"], verdict).set(1 if result["verdict"] == verdict else 0)
                if result.get("p_value") is not None:
                    self.p_value.labels(route, result["check"]).set(float(result["p_value"]))
                self.samples.labels(route, "canary").set(result.get("n_canary", 0))
                self.samples.labels(route, "stable").set(result.get("n_stable", 0))

    def serve(self, port: int, host: str = "127.0.0.1") -> WSGIServer:
        server, _ = start_http_server(port, host, registry=self.registry)
        return server
