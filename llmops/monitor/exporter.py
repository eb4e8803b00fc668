"""Prometheus gauges of the newest monitoring run, served by ``llmops monitor serve`` (``/metrics``, ``/healthz``).

Metrics (own :class:`~prometheus_client.CollectorRegistry`, never the global one):

- ``llmops_monitor_level{route,target,signal}``: the level as :data:`~llmops.monitor.levels.LEVEL_VALUES`
  (-1 insufficient data, 0 ok, 1 warn, 2 alert), from each route's newest window;
- ``llmops_monitor_value{route,target,signal}``, ``llmops_monitor_samples{route,target,signal}``;
- ``llmops_monitor_feedback{route,target,kind}`` (received, with_correction, orphaned);
- ``llmops_monitor_triggers_total{route,rule}``, ``llmops_monitor_last_run_timestamp_seconds``,
  ``llmops_monitor_run_errors_total``.

Gauges are replaced on each :meth:`MonitorExporter.update`, so a signal a run no longer reports disappears;
the bias probe's signals (:meth:`MonitorExporter.update_probe`) stay until the next probe.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from llmops.monitor.levels import LEVEL_VALUES, SignalResult
from llmops.monitor.model import MonitorRun

SIGNAL_LABELS = ("route", "target", "signal")
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


class MonitorExporter:
    """The monitor's gauges and counters in one registry, updated from :class:`MonitorRun` results."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.level = Gauge("llmops_monitor_level", "Signal level (-1 insufficient, 0 ok, 1 warn, 2 alert)",
                           SIGNAL_LABELS, registry=r)  # fmt: skip
        self.value = Gauge("llmops_monitor_value", "Signal value in the newest window", SIGNAL_LABELS, registry=r)
        self.samples = Gauge("llmops_monitor_samples", "Samples behind the signal value", SIGNAL_LABELS, registry=r)
        self.feedback = Gauge("llmops_monitor_feedback", "Feedback in the newest window",
                              ("route", "target", "kind"), registry=r)  # fmt: skip
        self.triggers = Counter("llmops_monitor_triggers", "Trigger records written", ("route", "rule"), registry=r)
        self.last_run = Gauge("llmops_monitor_last_run_timestamp_seconds", "End of the last monitoring run",
                              registry=r)  # fmt: skip
        self.run_errors = Counter("llmops_monitor_run_errors", "Monitoring runs that failed", registry=r)
        self._lock = threading.Lock()
        self._probes: dict[str, list[SignalResult]] = {}  # route -> the newest bias probe's results

    def update(self, run: MonitorRun) -> None:
        """Replace the signal gauges with ``run``'s newest windows; count its triggers."""
        with self._lock:
            for gauge in (self.level, self.value, self.samples, self.feedback):
                gauge.clear()
            for name, probed in self._probes.items():
                self._set(name, probed)
            for name, route in run.routes.items():
                latest = route.latest
                self._set(name, latest.results if latest is not None else [])
                for target, counts in route.feedback.items():
                    for kind in ("received", "with_correction", "orphaned"):
                        self.feedback.labels(name, target, kind).set(getattr(counts, kind))
                for trigger in route.triggers:
                    self.triggers.labels(name, str(trigger.get("rule", ""))).inc()
            self.last_run.set(run.finished)

    def update_probe(self, route: str, results: list[SignalResult]) -> None:
        """Set the bias probe's signals of ``route`` (kept across runs until the next probe)."""
        with self._lock:
            self._probes[route] = list(results)
            self._set(route, results)

    def _set(self, route: str, results: Iterable[SignalResult]) -> None:
        for result in results:
            labels = (route, result.target, result.signal)
            self.level.labels(*labels).set(LEVEL_VALUES[result.level])
            self.samples.labels(*labels).set(result.samples)
            if result.value is not None and math.isfinite(result.value):
                self.value.labels(*labels).set(result.value)

    def run_failed(self) -> None:
        self.run_errors.inc()

    def wsgi_app(self) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
        """``/metrics`` (Prometheus text) and ``/healthz``."""
        metrics = make_wsgi_app(self.registry)

        def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "/")
            if path == "/healthz":
                start_response("200 OK", [("Content-Type", "text/plain")])
                return [b"ok\n"]
            if path == "/metrics":
                return metrics(environ, start_response)
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: try /metrics or /healthz\n"]

        return app

    def serve(self, host: str = "127.0.0.1", port: int = 9108) -> WSGIServer:
        """Serve ``/metrics`` and ``/healthz`` from a daemon thread; ``shutdown()`` the server to stop."""
        server = make_server(host, port, self.wsgi_app(), ThreadingWSGIServer, handler_class=_Quiet)
        threading.Thread(target=server.serve_forever, name="llmops-monitor-exporter", daemon=True).start()
        return server
