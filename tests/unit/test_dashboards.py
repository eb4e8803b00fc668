"""The dashboard/alert-rule checker (llmops.monitor.dashboards) and the committed serving/grafana and
serving/prometheus files: what they query parses, the thresholds are serving/monitor.yaml's defaults, and a
misspelled metric in a panel is caught."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import promql_parser
import pytest

from llmops.config.monitor import DriftSpec, LatencySpec, QualitySpec
from llmops.errors import ConfigError
from llmops.gateway.metrics import GatewayMetrics
from llmops.monitor.dashboards import (
    Query,
    dashboard_queries,
    exposed_metrics,
    load_dashboard,
    load_rule_file,
    metric_names,
    missing_metrics,
    rule_queries,
)

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "serving" / "grafana" / "llmops.json"
RULES = ROOT / "serving" / "prometheus" / "alerts.yml"


def all_queries() -> list[Query]:
    return dashboard_queries(load_dashboard(DASHBOARD), "llmops.json") + rule_queries(load_rule_file(RULES), "alerts")


def test_metric_names_come_from_the_promql_syntax_tree() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (route, le) (rate(llmops_gateway_request_seconds_bucket{route=~"$route"}'
        "[$__rate_interval]))) / on (route) group_left () sum(rate(other_total[$__range])) "
        '+ {__name__="by_name", a="rate(not_a_metric[5m])"} + time() + vector(1)'
    )
    assert metric_names(expr) == {"llmops_gateway_request_seconds_bucket", "other_total", "by_name"}
    with pytest.raises(ValueError):
        metric_names("sum(rate(x[5m])")


def test_a_misspelled_metric_in_a_panel_is_reported_with_its_panel() -> None:
    dashboard = load_dashboard(DASHBOARD)
    exposed = set().union(*(metric_names(q.expr) for q in dashboard_queries(dashboard)))
    assert missing_metrics(dashboard_queries(dashboard), exposed) == ({}, [])

    broken = copy.deepcopy(dashboard)
    panel = next(p for p in broken["panels"] if p["title"] == "Latency p50 / p95 / p99")
    target = panel["targets"][1]
    target["expr"] = target["expr"].replace(
        "llmops_gateway_request_seconds_bucket", "llmops_gateway_request_second_bucket"
    )
    missing, invalid = missing_metrics(dashboard_queries(broken, "llmops.json"), exposed)
    assert missing == {"llmops_gateway_request_second_bucket": ['llmops.json: panel "Latency p50 / p95 / p99" [B]']}
    assert invalid == []


def test_a_panel_query_that_does_not_parse_is_a_problem(tmp_path: Path) -> None:
    dashboard = load_dashboard(DASHBOARD)
    dashboard["panels"][1]["targets"][0]["expr"] = "sum(rate(llmops_gateway_requests_total[5m])"
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"dashboard": dashboard}))  # the API's wrapper format reads too
    _, invalid = missing_metrics(dashboard_queries(load_dashboard(path), "d.json"), set())
    assert len(invalid) == 1 and invalid[0].file.startswith("d.json: panel ") and "not valid PromQL" in str(invalid[0])


def test_template_variables_and_collapsed_rows_are_checked() -> None:
    dashboard = {
        "panels": [
            {"type": "row", "collapsed": True, "panels": [{"title": "inner", "targets": [{"expr": "a_total"}]}]}
        ],
        "templating": {
            "list": [
                {"name": "route", "type": "query", "query": {"query": "label_values(routes_metric, route)"}},
                {"name": "t", "type": "query", "query": 'label_values(t_metric{route=~"$route"}, target)'},
                {"name": "ds", "type": "datasource", "query": "prometheus"},
            ]
        },
    }
    names = {metric_names(q.expr).pop(): q.source for q in dashboard_queries(dashboard, "d")}
    assert names == {
        "a_total": 'd: panel "inner" [?]',
        "routes_metric": "d: variable $route",
        "t_metric": "d: variable $t",
    }


def test_exposed_names_include_suffixes_of_families_without_samples() -> None:
    text = GatewayMetrics().expose().decode()  # labelled metrics: declared, no sample yet
    exposed = exposed_metrics(text)
    assert {
        "llmops_gateway_requests_total",
        "llmops_gateway_request_seconds_bucket",
        "llmops_gateway_degraded",
    } <= exposed
    assert "llmops_gateway_request_seconds_total" not in exposed  # a histogram has no _total


def test_the_committed_dashboard_is_a_grafana_dashboard_with_variables() -> None:
    dashboard = load_dashboard(DASHBOARD)
    assert dashboard["schemaVersion"] >= 39
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert "label_values(" in variables["route"]["definition"] and "label_values(" in variables["target"]["definition"]
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert all(t["datasource"]["uid"] == "${datasource}" for p in panels for t in p["targets"])
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    queried = set().union(*(metric_names(q.expr) for q in dashboard_queries(dashboard)))
    for metric in (
        "llmops_gateway_requests_total",
        "llmops_gateway_route_weight",
        "llmops_gateway_request_seconds_bucket",
        "llmops_gateway_ttft_seconds_bucket",
        "llmops_gateway_tokens_total",
        "llmops_monitor_level",
        "llmops_monitor_value",
        "llmops_monitor_feedback",
        "llmops_monitor_triggers_total",
    ):
        assert metric in queried, metric
    assert missing_metrics(all_queries(), queried | {"llmops_monitor_last_run_timestamp_seconds"})[1] == []


def _threshold(expr: str) -> float:
    """The number the first comparison of ``expr`` compares with."""
    found: list[float] = []

    def visit(node: promql_parser.Expr) -> None:
        if (
            isinstance(node, promql_parser.BinaryExpr)
            and str(node.op) in {">", "<", ">=", "<="}
            and isinstance(node.rhs, promql_parser.NumberLiteral)
        ):
            found.append(node.rhs.val)

    promql_parser.walk(promql_parser.parse(expr), pre_visit=visit)
    return found[0]


def test_alert_thresholds_are_the_monitor_defaults() -> None:
    rules = {r.alert: r for g in load_rule_file(RULES).groups for r in g.rules}
    quality, latency, drift = QualitySpec(), LatencySpec(), DriftSpec()
    assert quality.exact_match and quality.json_valid and latency.p95_ms and latency.error_rate
    expected = {
        "LlmopsLiveExactMatchLow": quality.exact_match.alert,
        "LlmopsLiveJsonValidityLow": quality.json_valid.alert,
        "LlmopsInputDrift": drift.auc_alert,
        "LlmopsOutputDrift": drift.auc_alert,
        "LlmopsLatencyP95High": latency.p95_ms.alert / 1000 if latency.p95_ms.alert else None,
        "LlmopsLatencyP95Warn": latency.p95_ms.warn / 1000 if latency.p95_ms.warn else None,
        "LlmopsErrorRateHigh": latency.error_rate.alert,
        "LlmopsErrorRateWarn": latency.error_rate.warn,
    }
    assert {name: _threshold(rules[name].expr) for name in expected} == expected
    assert {"LlmopsMonitorSignalAlert", "LlmopsGatewayDegraded", "LlmopsRequestLogDrops"} <= set(rules)
    assert "llmops_monitor_last_run_timestamp_seconds" in metric_names(rules["LlmopsMonitorNotRunning"].expr)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("{alert: A, expr: 'sum(rate(x[5m])'}", "not valid PromQL"),
        ("{alert: A, record: b, expr: x}", "exactly one of alert or record"),
        ("{alert: A, expr: x, for: 5 minutes}", "for"),
        ("{alert: A, expr: x, severity: high}", "severity"),
    ],
)
def test_a_broken_rule_file_fails_the_schema_check_with_file_and_line(tmp_path: Path, rule: str, message: str) -> None:
    path = tmp_path / "alerts.yml"
    path.write_text(f"groups:\n  - name: g\n    rules:\n      - {{alert: Ok, expr: up == 0}}\n      - {rule}\n")
    with pytest.raises(ConfigError) as info:
        load_rule_file(path)
    text = str(info.value)
    assert "alerts.yml:5" in text and "groups.0.rules.1" in text and message in text, text
