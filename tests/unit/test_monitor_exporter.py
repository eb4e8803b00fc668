"""The monitor's Prometheus exporter: gauges from a run's newest windows, served on /metrics and /healthz."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from llmops.monitor.exporter import MonitorExporter
from llmops.monitor.levels import SignalResult, insufficient
from llmops.monitor.model import FeedbackCounts, MonitorRun, RouteResult, WindowResult


def run_of(*results: SignalResult, old: list[SignalResult] | None = None, finished: float = 1234.5) -> MonitorRun:
    windows = [WindowResult(0, 60, 10, 10, old or []), WindowResult(60, 120, 500, 400, list(results))]
    route = RouteResult(
        "support-triage",
        windows,
        feedback={"stable": FeedbackCounts(received=7, with_correction=3, orphaned=1)},
        triggers=[{"run_id": "abc", "rule": "drift"}],
    )
    return MonitorRun({"support-triage": route}, started=finished - 5, finished=finished)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def served() -> Iterator[tuple[MonitorExporter, str]]:
    exporter = MonitorExporter()
    server = exporter.serve("127.0.0.1", 0)
    yield exporter, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted(labels.items()))


def test_gauges_follow_the_newest_window(served: tuple[MonitorExporter, str]) -> None:
    exporter, url = served
    assert httpx.get(f"{url}/healthz").status_code == 200
    drift = SignalResult("input_drift", "alert", 0.81, 0.55, 500, "roc_auc")
    p95 = SignalResult("latency.p95_ms", "ok", 420.0, 2000.0, 400, "p95_ms", target="stable")
    exporter.update(run_of(drift, p95, insufficient("quality.exact_match", 3, 20, target="stable"),
                           old=[SignalResult("output.length", "warn", 1.0, 0.1, 10)]))  # fmt: skip
    got = samples(httpx.get(f"{url}/metrics").text)
    route = {"route": "support-triage"}
    assert got[key("llmops_monitor_level", **route, target="*", signal="input_drift")] == 2
    assert got[key("llmops_monitor_value", **route, target="*", signal="input_drift")] == pytest.approx(0.81)
    assert got[key("llmops_monitor_samples", **route, target="stable", signal="latency.p95_ms")] == 400
    assert got[key("llmops_monitor_level", **route, target="stable", signal="quality.exact_match")] == -1
    assert key("llmops_monitor_value", **route, target="stable", signal="quality.exact_match") not in got
    assert key("llmops_monitor_level", **route, target="*", signal="output.length") not in got  # older window
    assert got[key("llmops_monitor_feedback", **route, target="stable", kind="with_correction")] == 3
    assert got[key("llmops_monitor_feedback", **route, target="stable", kind="orphaned")] == 1
    assert got[key("llmops_monitor_triggers_total", **route, rule="drift")] == 1
    assert got[key("llmops_monitor_last_run_timestamp_seconds")] == 1234.5
    assert got[key("llmops_monitor_run_errors_total")] == 0

    # the next run: a signal it no longer reports disappears; failures and triggers count up
    exporter.update(run_of(p95, finished=2000.0))
    exporter.run_failed()
    got = samples(httpx.get(f"{url}/metrics").text)
    assert key("llmops_monitor_level", **route, target="*", signal="input_drift") not in got
    assert got[key("llmops_monitor_triggers_total", **route, rule="drift")] == 2
    assert got[key("llmops_monitor_run_errors_total")] == 1
    assert httpx.get(f"{url}/nope").status_code == 404


def test_the_serve_loop_survives_a_failing_run_and_stops_on_request(tmp_path: Path) -> None:
    import threading

    from llmops.config.monitor import MonitorFile
    from llmops.config.workspace import load_workspace
    from llmops.monitor.probe import ProbeResult
    from llmops.monitor.serve import ServeOptions, serve_monitor

    spec = MonitorFile.model_validate({"routes": {"support-triage": {"signals": {"bias": {"every": "1h"}}}}})
    stop = threading.Event()
    port: list[int] = []
    scraped: list[str] = []
    calls = {"run": 0, "probe": 0}

    def run(ws: object, spec: object) -> MonitorRun:
        calls["run"] += 1
        if calls["run"] == 1:
            raise RuntimeError("log unreadable")
        if calls["run"] == 3:
            scraped.append(httpx.get(f"http://127.0.0.1:{port[0]}/metrics").text)
            stop.set()  # what SIGTERM does in the CLI
        return run_of(SignalResult("input_drift", "ok", 0.5, 0.55, 500))

    def probe(route: str) -> ProbeResult:
        calls["probe"] += 1
        gap = SignalResult("bias.gap", "alert", 0.3, 0.1, 120)
        return ProbeResult(route, "evals/x.yaml", {}, [gap], 120, 0)

    stats = serve_monitor(
        load_workspace(tmp_path, env={}), spec, ServeOptions(interval_s=0.01, port=0), stop,
        run=run, probe=probe, on_ready=port.append,
    )  # fmt: skip
    assert (stats.runs, stats.failures, calls["probe"]) == (2, 1, 1)  # the probe runs once per `every`
    got = samples(scraped[0])
    route = {"route": "support-triage"}
    assert got[key("llmops_monitor_run_errors_total")] == 1
    assert got[key("llmops_monitor_level", **route, target="*", signal="input_drift")] == 0
    assert got[key("llmops_monitor_level", **route, target="*", signal="bias.gap")] == 2  # kept across runs
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port[0]}/healthz")  # the exporter stopped with the loop
