"""Triggers against a real MLflow server: recorded once per episode, actions started without blocking."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from llmops.config.monitor import AlertRule, MonitorFile
from llmops.config.workspace import Workspace, load_workspace
from llmops.monitor.alerts import evaluate_rules
from llmops.monitor.levels import SignalResult
from llmops.monitor.model import RouteResult, WindowResult
from llmops.monitor.triggers import fire, wait_for_actions, wait_retrain
from llmops.monitor.webhook import pending_deliveries
from llmops.process import free_port
from llmops.registry import Registry, connect

pytestmark = pytest.mark.integration


@pytest.fixture
def ws(mlflow_server, tmp_path: Path) -> Workspace:  # type: ignore[no-untyped-def]
    return load_workspace(tmp_path, env={"MLFLOW_TRACKING_URI": mlflow_server.url})


@pytest.fixture
def reg(ws: Workspace) -> Registry:
    return connect(ws)


def monitor_file(route: str, actions: dict[str, object], rule_actions: list[str]) -> MonitorFile:
    return MonitorFile.model_validate(
        {
            "actions": actions,
            "routes": {route: {"alerts": [{"name": "drift", "signals": ["input_drift", "field.*"], "for": 2,
                                           "actions": rule_actions}]}},
        }
    )  # fmt: skip


def route_result(route: str, start: float, n: int = 3) -> RouteResult:
    windows = [
        WindowResult(
            start + i * 60, start + (i + 1) * 60, 500, 500,
            [SignalResult("input_drift", "alert", 0.8 + i / 100, 0.55, 500, "roc_auc"),
             SignalResult("field.priority", "alert", 0.2, 0.1, 300, "js_distance", target="stable")],
        )
        for i in range(n)
    ]  # fmt: skip
    release = {"stable": {"adapter_version": "support-triage-lora/3", "prompt_version": "support-triage/2"}}
    return RouteResult(route=route, windows=windows, release=release)


def the_rule(spec: MonitorFile, route: str) -> AlertRule:
    return spec.routes[route].alerts[0]


def test_a_firing_is_recorded_once_per_episode(reg: Registry, ws: Workspace) -> None:
    route = f"r-{uuid.uuid4().hex[:6]}"
    url = f"http://127.0.0.1:{free_port()}/hook"  # a webhook that is down
    spec = monitor_file(route, {"ops": {"type": "webhook", "url": url, "retries": 1, "backoff_s": 3}}, ["ops"])
    result = route_result(route, 1_000_000.0)
    [firing] = evaluate_rules(route, spec.routes[route].alerts, result.windows)

    trigger = fire(reg, spec, firing, result, ws=ws)
    assert trigger is not None
    # fire returned while the webhook is still being delivered (its retry waits 3 s) in the background
    assert [d.trigger for d in pending_deliveries()] == [trigger["run_id"]]

    record = reg.triggers.get(trigger["run_id"])
    assert (record.route, record.rule, record.level) == (route, "drift", "alert")
    assert (record.window_start, record.window_end) == (1_000_060.0, 1_000_180.0)
    assert record.metrics == {"route/input_drift": pytest.approx(0.82), "stable/field.priority": pytest.approx(0.2)}
    assert json.loads(record.tags["llmops.trigger.release.stable"])["adapter_version"] == "support-triage-lora/3"
    evidence = reg.triggers.evidence(record.run_id)
    assert evidence["run_id"] == record.run_id and {r["signal"] for r in evidence["results"]} == {
        "input_drift", "field.priority"}  # fmt: skip

    # the next run: the rule still holds over windows overlapping the recorded ones: same episode
    later = route_result(route, 1_000_060.0)
    [again] = evaluate_rules(route, spec.routes[route].alerts, later.windows)
    assert fire(reg, spec, again, later, ws=ws) is None
    assert [t.run_id for t in reg.triggers.find(route)] == [record.run_id]

    # the down webhook: retried, then reported failed on the trigger; the drain is bounded
    assert wait_for_actions(15) == []
    tags = reg.triggers.get(record.run_id).tags
    assert tags["llmops.webhook.ops.status"] == "failed" and tags["llmops.webhook.ops.attempts"] == "2"

    # a new episode (after a gap) records a new trigger
    fresh = route_result(route, 2_000_000.0)
    [new] = evaluate_rules(route, spec.routes[route].alerts, fresh.windows)
    assert fire(reg, spec, new, fresh, ws=ws) is not None
    assert len(reg.triggers.find(route)) == 2
    assert wait_for_actions(15) == []


def test_a_missing_webhook_variable_is_recorded_as_failed(reg: Registry, ws: Workspace) -> None:
    route = f"r-{uuid.uuid4().hex[:6]}"
    env = f"LLMOPS_TEST_HOOK_{uuid.uuid4().hex[:6].upper()}"
    spec = monitor_file(route, {"ops": {"type": "webhook", "url_env": env}}, ["ops"])
    result = route_result(route, 3_000_000.0)
    [firing] = evaluate_rules(route, spec.routes[route].alerts, result.windows)
    trigger = fire(reg, spec, firing, result, ws=ws)
    assert trigger is not None and trigger["started"]["ops"]["status"] == "failed"
    tags = reg.triggers.get(trigger["run_id"]).tags
    assert tags["llmops.webhook.ops.status"] == "failed" and env in tags["llmops.webhook.ops.error"]


def test_a_retrain_action_starts_llmops_retrain_detached(reg: Registry, ws: Workspace) -> None:
    route = f"r-{uuid.uuid4().hex[:6]}"
    spec = monitor_file(route, {"again": {"type": "retrain", "job": "finetune/x.yaml"}}, ["again"])
    result = route_result(route, 4_000_000.0)
    [firing] = evaluate_rules(route, spec.routes[route].alerts, result.windows)
    trigger = fire(reg, spec, firing, result, ws=ws)
    assert trigger is not None
    assert wait_retrain(trigger, 0) is None  # fire did not wait: the child is still starting up
    run_id = trigger["run_id"]
    info = trigger["started"]["again"]
    command = info["command"]
    assert command[command.index("retrain") :][:6] == ["retrain", route, "--trigger", run_id, "--min-records", "50"]
    assert command[-2:] == ["--job", "finetune/x.yaml"]
    logs = command[command.index("--request-log") + 1], command[command.index("--feedback-log") + 1]
    assert logs == (str(ws.home / spec.request_log), str(ws.home / spec.feedback_log))  # the logs the monitor read
    tags = reg.triggers.get(run_id).tags
    assert tags["llmops.retrain.pid"] == str(info["pid"])
    log = ws.home / "monitor" / f"retrain-{run_id}.log"
    assert tags["llmops.retrain.log"] == str(log)
    code = wait_retrain(trigger, 120)
    assert code is not None  # it ran to its end in a child process (this workspace has nothing to retrain)
    assert log.is_file() and log.read_text().strip()  # its output went to the log
    assert code != 0  # this workspace has no gateway config: `llmops retrain` refuses (and says why, in the log)
    assert wait_retrain(trigger, 5, registry=reg) == code  # read back from the trigger once it is over
