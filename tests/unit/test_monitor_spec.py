"""serving/monitor.yaml: the example is valid; a malformed one reports every error with file:line [field]."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from llmops.config.monitor import load_monitor_file
from llmops.errors import ValidationFailed
from llmops.validate import validate_workspace

REPO = Path(__file__).resolve().parents[2]
Cli = Callable[..., subprocess.CompletedProcess[str]]

BROKEN = """\
version: 1
actions:
  notify: {type: webhook, url: ftp://example.invalid/hook}
routes:
  support-triage:
    window:
      duration: 10 minutes
      requests: 0
    signals:
      input_drift: {auc_alert: 0.4}
      descriptors: {fields: [intent], colour: red}
    alerts:
      - name: Input Drift
        signals: []
        for: 0
"""


def test_the_example_spec_is_valid_and_describes_the_example_route() -> None:
    spec = load_monitor_file(REPO / "serving" / "monitor.yaml")
    route = spec.routes["support-triage"]
    assert route.signals.descriptors.fields == ["intent", "priority"]
    schema = route.signals.quality.json_schema or {}
    assert set(schema["properties"]["priority"]["enum"]) == {"low", "medium", "high", "urgent"}
    assert {a.type for a in spec.actions.values()} == {"retrain", "webhook"}
    assert {r.name for r in route.alerts} >= {"input-drift", "output-distribution", "quality", "latency-errors"}


def test_a_malformed_spec_reports_every_error_with_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(BROKEN)
    with pytest.raises(ValidationFailed) as caught:
        load_monitor_file(path, display="serving/monitor.yaml")
    shown = [str(p) for p in caught.value.problems]
    expected = {
        "actions.notify.webhook": 3,
        "routes.support-triage.window.duration": 7,
        "routes.support-triage.window.requests": 8,
        "routes.support-triage.signals.input_drift.auc_alert": 10,
        "routes.support-triage.signals.descriptors.colour": 11,
        "routes.support-triage.alerts.0.name": 13,
        "routes.support-triage.alerts.0.signals": 14,
        "routes.support-triage.alerts.0.for": 15,
    }
    for field, line in expected.items():
        assert any(s.startswith(f"serving/monitor.yaml:{line} [{field}") for s in shown), (field, shown)
    assert all(re.match(r"serving/monitor\.yaml:\d+ \[[^\]]+\]: ", s) for s in shown), shown


def test_validate_checks_monitor_yaml_and_the_alert_rules_by_their_own_schemas(tmp_path: Path) -> None:
    (tmp_path / "serving" / "prometheus").mkdir(parents=True)
    (tmp_path / "serving" / "monitor.yaml").write_text(BROKEN)
    rules = "groups:\n  - name: llmops\n    rules:\n      - {alert: MonitorDown, expr: up == 0, for: 5m}\n"
    (tmp_path / "serving" / "prometheus" / "alerts.yml").write_text(rules)
    _checked, problems = validate_workspace(tmp_path)
    files = {p.file for p in problems}
    assert files == {"serving/monitor.yaml"}  # alerts.yml is valid YAML: never read as a gateway config
    assert len(problems) >= 8
    (tmp_path / "serving" / "prometheus" / "alerts.yml").write_text("groups: [\n")
    _checked, problems = validate_workspace(tmp_path)
    assert any(p.file == "serving/prometheus/alerts.yml" and p.line for p in problems)
    (tmp_path / "serving" / "prometheus" / "alerts.yml").write_text(rules.replace("up == 0", "up == ("))
    _checked, problems = validate_workspace(tmp_path)
    assert any(p.file == "serving/prometheus/alerts.yml" for p in problems), problems  # PromQL that does not parse


def test_the_repository_workspace_validates(tmp_path: Path) -> None:
    _checked, problems = validate_workspace(REPO)
    assert [str(p) for p in problems if p.file.startswith("serving/")] == []


def test_monitor_run_on_a_malformed_spec_exits_2_naming_file_line_and_field(tmp_path: Path, invoke_llmops: Cli) -> None:
    (tmp_path / "serving").mkdir()
    (tmp_path / "serving" / "monitor.yaml").write_text(BROKEN)
    result = invoke_llmops("monitor", "run", "--no-record", cwd=tmp_path, env={"LLMOPS_HOME": str(tmp_path / "h")})
    assert result.returncode == 2
    assert "serving/monitor.yaml:7 [routes.support-triage.window.duration]" in result.stderr
