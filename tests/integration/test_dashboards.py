"""The dashboard and alert rules query metrics that really exist, and the rules pass promtool.

A real gateway (``llmops serve gateway``) over the fake engine serves a canary route with capture on:
unary and streamed answers, an engine failure, a feedback POST. Its ``/metrics`` and the monitor
exporter's (``llmops monitor serve``) are scraped; every metric that serving/grafana/llmops.json and
serving/prometheus/alerts.yml query must be among them.

``promtool`` comes from Debian's ``prometheus`` package (``make test`` installs it where apt-get works);
without it the rules get the schema check of :func:`llmops.monitor.dashboards.load_rule_file` and the
promtool tests are skipped, saying why.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from llmops.monitor.dashboards import (
    dashboard_queries,
    exposed_metrics,
    load_dashboard,
    load_rule_file,
    metric_names,
    missing_metrics,
    rule_queries,
)
from llmops.process import ManagedProcess, free_port, http_ok
from llmops.rollout.metrics import RolloutExporter
from llmops.rollout.state import RolloutState, Step

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "serving" / "grafana" / "llmops.json"
RULES = ROOT / "serving" / "prometheus" / "alerts.yml"
RULES_TEST = ROOT / "serving" / "prometheus" / "alerts_test.yml"
PROMTOOL = shutil.which("promtool")
NO_PROMTOOL = "promtool is not installed (make test installs Debian's prometheus package where apt-get works)"


def gateway_config(engine_url: str) -> str:
    return f"""
engines:
  fake: {{url: "{engine_url}"}}
routes:
  echo:
    capture: 1.0
    targets:
      - {{name: stable, weight: 1}}
      - {{name: canary, weight: 1}}
limits: {{read_timeout_s: 10}}
"""


def monitor_config(workspace: Path) -> str:
    return f"""
request_log: "{workspace / "requests*.jsonl"}"
feedback_log: "{workspace / "feedback*.jsonl"}"
interval_s: 3600
routes:
  echo:
    reference: {{training_data: false, outputs: none}}
"""


@pytest.fixture
def engine(tmp_path: Path, start_fake_engine: Callable[..., Any]) -> Iterator[str]:
    proc, url = start_fake_engine(tmp_path, "--chunks", "4")
    try:
        yield url
    finally:
        proc.stop()


@pytest.fixture
def gateway(tmp_path: Path, engine: str, start_gateway: Callable[..., Any]) -> Iterator[Any]:
    gw = start_gateway(tmp_path / "ws", gateway_config(engine))
    try:
        yield gw
    finally:
        gw.process.stop()


def send_traffic(gateway: Any, engine_url: str, headers: dict[str, str]) -> None:
    """Unary and streamed answers on both targets, one engine failure (502), one feedback."""
    body = {"model": "echo", "messages": [{"role": "user", "content": "my card was charged twice"}], "max_tokens": 8}
    with httpx.Client(base_url=gateway.url, headers=headers, timeout=30) as client:
        request_ids = []
        for i in range(8):
            r = client.post("/v1/chat/completions", json={**body, "user": f"user-{i}"})
            assert r.status_code == 200, r.text
            request_ids.append(r.headers["x-request-id"])
            stream = {**body, "user": f"user-{i}", "stream": True, "stream_options": {"include_usage": True}}
            with client.stream("POST", "/v1/chat/completions", json=stream) as resp:
                assert resp.status_code == 200 and b"[DONE]" in resp.read()
        httpx.post(f"{engine_url}/fake/fault", json={"mode": "reset", "after": 1, "times": 1}).raise_for_status()
        assert client.post("/v1/chat/completions", json=body).status_code == 502
        feedback = {"request_id": request_ids[0], "score": 0.0, "correction": '{"intent":"billing"}'}
        r = client.post("/v1/feedback", json=feedback)
        assert r.status_code == 200 and r.json()["status"] == "recorded", r.text


def scrape_monitor(llmops_bin: str, workspace: Path) -> str:
    """``llmops monitor serve`` on a free port over the gateway's logs: its ``/metrics`` page."""
    (workspace / "serving" / "monitor.yaml").write_text(monitor_config(workspace))
    port = free_port()
    argv = [llmops_bin, "monitor", "serve", "--config", "serving/monitor.yaml", "--port", str(port)]
    proc = ManagedProcess("monitor", argv, workspace / "monitor.log", cwd=workspace).start()
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        proc.wait_healthy(lambda: http_ok(url), timeout=120, interval=0.2)
        return httpx.get(url, timeout=10).text
    finally:
        proc.stop()


def rollout_exposition() -> str:
    """The rollout controller's gauges after one look of a running rollout (as ``--metrics-port`` serves them)."""
    exporter = RolloutExporter()
    state = RolloutState(
        route="support-triage", actor="ci", adapter="a/2", prompt="p/1", label="a/2 + p/1", stable_target="stable",
        canary_target="canary", stable_adapter="a/1", stable_prompt="p/1", stable_version=1, previous_canary=None,
        steps=[Step(10, 30.0, 100, 1800.0)], phase="analysing",
        results=[{"check": "error_rate", "verdict": "pass", "p_value": 0.9, "n_canary": 120, "n_stable": 1000}],
    )  # fmt: skip
    exporter.update("r1", "running", state)
    return generate_latest(exporter.registry).decode()


def sampled(exposition: str) -> set[str]:
    return {s.name for family in text_string_to_metric_families(exposition) for s in family.samples}


def test_every_metric_the_dashboard_and_rules_query_is_exported(
    gateway: Any, engine: str, gateway_keys: Any, llmops_bin: str, tmp_path: Path
) -> None:
    send_traffic(gateway, engine, gateway_keys.user)
    gateway_page = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    queries = dashboard_queries(load_dashboard(DASHBOARD), "llmops.json") + rule_queries(
        load_rule_file(RULES), "alerts.yml"
    )
    queried = set().union(*(metric_names(q.expr) for q in queries))

    # the gateway's metrics carry samples after this traffic: the panels and rules show data, not just names
    gateway_queried = {m for m in queried if m.startswith("llmops_gateway_")}
    assert gateway_queried - sampled(gateway_page) == set(), gateway_page

    monitor_page = scrape_monitor(llmops_bin, tmp_path / "ws")
    rollout_page = rollout_exposition()
    exported = exposed_metrics(gateway_page) | exposed_metrics(monitor_page) | exposed_metrics(rollout_page)
    missing, invalid = missing_metrics(queries, exported)
    assert invalid == []
    assert missing == {}, f"queried but exported by neither the gateway, the monitor nor a rollout: {missing}"
    # and the check has teeth: the monitor's names are not on the gateway's page
    assert "llmops_monitor_level" in missing_metrics(queries, exposed_metrics(gateway_page))[0]


@pytest.mark.skipif(PROMTOOL is None, reason=NO_PROMTOOL)
def test_promtool_accepts_the_rules_and_their_unit_tests_pass() -> None:
    assert PROMTOOL is not None
    check = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS" in check.stdout
    # alerts_test.yml feeds series (a bad canary, a stopped monitor, a healthy route) and expects exactly
    # the alerts that should fire, labels and annotations included
    unit = subprocess.run(
        [PROMTOOL, "test", "rules", RULES_TEST.name], cwd=RULES_TEST.parent, capture_output=True, text=True, timeout=60
    )
    assert unit.returncode == 0, unit.stdout + unit.stderr


@pytest.mark.skipif(PROMTOOL is None, reason=NO_PROMTOOL)
def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    broken = tmp_path / "alerts.yml"
    broken.write_text(RULES.read_text().replace("llmops_monitor_level) >= 2", "llmops_monitor_level >= 2", 1))
    check = subprocess.run([PROMTOOL, "check", "rules", str(broken)], capture_output=True, text=True, timeout=60)
    assert check.returncode != 0


def test_the_rules_pass_the_schema_check() -> None:
    """Runs with or without promtool: the fallback check, Prometheus's rule format plus a PromQL parse."""
    rules = load_rule_file(RULES)
    assert sum(len(g.rules) for g in rules.groups) >= 10
