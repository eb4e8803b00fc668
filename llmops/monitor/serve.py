"""``llmops monitor serve``: :func:`~llmops.monitor.runner.run_monitor` on an interval, exported to Prometheus.

Each cycle runs the monitor (records, triggers and all) and updates the exporter's gauges
(:mod:`llmops.monitor.exporter`); a failing run counts ``llmops_monitor_run_errors_total``, is reported,
and the loop goes on. Routes with ``signals.bias`` get a bias probe (:mod:`llmops.monitor.probe`) when its
``every`` has elapsed. The loop ends when ``stop`` is set (SIGTERM/SIGINT in the CLI) or after one cycle
with ``once``; webhooks still retrying are then given a bounded wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from llmops.config.monitor import MonitorFile
from llmops.config.workspace import Workspace
from llmops.events import SILENT, Reporter
from llmops.monitor.exporter import MonitorExporter
from llmops.monitor.model import MonitorRun
from llmops.monitor.probe import ProbeResult, probe_due, run_probe
from llmops.monitor.triggers import wait_for_actions
from llmops.registry import connect

#: runs the monitor once (tests pass their own; default: run_monitor with the loop's embedder)
RunFn = Callable[[Workspace, MonitorFile], MonitorRun]
ProbeFn = Callable[[str], ProbeResult]


@dataclass
class ServeOptions:
    interval_s: float
    host: str = "127.0.0.1"
    port: int = 9108
    once: bool = False
    gateway_url: str | None = None
    api_key: str | None = None
    drain_s: float = 10.0


@dataclass
class ServeStats:
    runs: int = 0
    failures: int = 0
    probes: int = 0
    undelivered: list[str] = field(default_factory=list)


def _default_run(reporter: Reporter) -> RunFn:
    from llmops.monitor.embeddings import MiniLMEmbedder
    from llmops.monitor.runner import run_monitor

    embedder = MiniLMEmbedder()  # loaded once, reused by every cycle

    def run(ws: Workspace, spec: MonitorFile) -> MonitorRun:
        return run_monitor(ws, spec, embedder=embedder, reporter=reporter)

    return run


def _default_probe(ws: Workspace, spec: MonitorFile, opts: ServeOptions, reporter: Reporter) -> ProbeFn:
    from llmops.monitor.probe import default_gateway_url

    def probe(route: str) -> ProbeResult:
        url = opts.gateway_url or default_gateway_url(ws)
        return run_probe(connect(ws), spec, route, gateway_url=url, api_key=opts.api_key, reporter=reporter)

    return probe


def serve_monitor(
    ws: Workspace,
    spec: MonitorFile,
    opts: ServeOptions,
    stop: threading.Event,
    *,
    exporter: MonitorExporter | None = None,
    run: RunFn | None = None,
    probe: ProbeFn | None = None,
    reporter: Reporter = SILENT,
    on_ready: Callable[[int], None] | None = None,
) -> ServeStats:
    """Run the monitor every ``opts.interval_s`` seconds until ``stop`` is set; serve the gauges meanwhile."""
    exporter = exporter or MonitorExporter()
    server = exporter.serve(opts.host, opts.port)
    if on_ready is not None:
        on_ready(server.server_port)
    stats = ServeStats()
    last_probe: dict[str, float] = {}
    try:
        run = run or _default_run(reporter)
        probe = probe or _default_probe(ws, spec, opts, reporter)
        while not stop.is_set():
            try:
                result = run(ws, spec)
            except Exception as exc:  # noqa: BLE001 - a failing run is counted and reported; the loop goes on
                stats.failures += 1
                exporter.run_failed()
                reporter.note(f"monitor run failed: {type(exc).__name__}: {exc}")
            else:
                stats.runs += 1
                exporter.update(result)
                for error in result.errors:
                    reporter.note(f"monitor run: {error}")
            for route, route_spec in spec.routes.items():
                bias = route_spec.signals.bias
                now = time.time()
                if bias is None or not probe_due(last_probe.get(route), bias, now):
                    continue
                last_probe[route] = now
                try:
                    found = probe(route)
                except Exception as exc:  # noqa: BLE001 - as for runs: counted, reported, the loop goes on
                    exporter.run_failed()
                    reporter.note(f"bias probe of route {route} failed: {type(exc).__name__}: {exc}")
                else:
                    stats.probes += 1
                    exporter.update_probe(route, found.results)
            if opts.once:
                break
            stop.wait(opts.interval_s)
    finally:
        server.shutdown()
        server.server_close()
        stats.undelivered = wait_for_actions(opts.drain_s)
    return stats
