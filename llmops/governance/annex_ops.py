"""Annex IV points 3 (monitoring, functioning and control), 5 (risk management) and 9 (post-market monitoring).

Their statements come from the route's state in the registry (weights, the rollout owning them) and the
workspace's ``serving/gateway.yaml``, ``serving/rollout.yaml``, ``serving/monitor.yaml`` and ``llmops.yaml``
(retention); a file that is absent or invalid makes its statements :data:`NOT_RECORDED`. Secrets never
appear: an API key is named, an alert webhook shows the environment variable that holds its URL.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from llmops.config.monitor import RetrainAction, RouteMonitorSpec, WebhookAction
from llmops.config.rollout import RouteRollout
from llmops.governance.document import Section, Table, facts, table
from llmops.governance.findings import all_findings, result_text
from llmops.governance.inputs import GATEWAY_FILE, MONITOR_FILE, ROLLOUT_FILE, ReportInputs
from llmops.governance.lineage import NOT_RECORDED
from llmops.governance.sections import bias_table, eval_sources

WORKSPACE_FILE = "llmops.yaml"


def compact(value: Any) -> str:
    """A config value on one line (nested models as compact JSON, unset fields left out)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_none=True, by_alias=True)
    if isinstance(value, dict):
        return ", ".join(f"{k}={json.dumps(v) if isinstance(v, dict | list) else v}" for k, v in value.items())
    return str(value)


def _route_monitor(inputs: ReportInputs) -> RouteMonitorSpec | None:
    return inputs.monitor.routes.get(inputs.route) if inputs.monitor else None


def _route_rollout(inputs: ReportInputs) -> RouteRollout | None:
    return inputs.rollout.routes.get(inputs.route) if inputs.rollout else None


def _weights(inputs: ReportInputs) -> Table:
    state = inputs.route_state
    spec = inputs.gateway.routes.get(inputs.route) if inputs.gateway else None
    live = dict(state.weights) if state and state.weights is not None else {}
    rows = [(t.name, t.release, t.weight, live.get(t.name, NOT_RECORDED)) for t in (spec.targets if spec else [])]
    return table(("target", "release stage", f"weight in {GATEWAY_FILE}", "weight in the registry (live)"), rows,
                 "Routing: weighted targets, sticky per user/session")  # fmt: skip


def _rollout_table(spec: RouteRollout | None) -> Table:
    rows = [] if spec is None else [(i + 1, s.weight, s.min_duration, s.min_samples, s.max_duration)
                                    for i, s in enumerate(spec.steps)]  # fmt: skip
    return table(("step", "canary weight %", "min duration", "min samples", "max duration"), rows,
                 f"Rollout steps ({ROLLOUT_FILE})")  # fmt: skip


def _checks(spec: RouteRollout | None) -> list[tuple[str, str]]:
    if spec is None:
        return []
    return [(name, compact(getattr(spec.checks, name))) for name in spec.checks.enabled()]


def monitoring_control(inputs: ReportInputs) -> Section:
    """Annex IV 3: how the system is watched and controlled, its capabilities and limits as recorded."""
    state, gw, rollout = inputs.route_state, inputs.gateway, _route_rollout(inputs)
    route = gw.routes.get(inputs.route) if gw else None
    log = gw.request_log if gw else None
    retention = inputs.retention
    control = Section(
        "3-control", "Control: routing, canary and rollout",
        sources=(f"registry: route state of {inputs.route}", GATEWAY_FILE, ROLLOUT_FILE),
        facts=facts((
            ("live weights version", state.weights_version if state else None),
            ("weights last set by", state.actor if state else None),
            ("rollout owning the weights now", (state.rollout or "none") if state else None),
            ("shadow target", (route.shadow.name if route.shadow else "none") if route else None),
            ("rollout confidence per check and step", rollout.confidence if rollout else None),
            ("rollout checks (canary vs stable, same window)",
             "; ".join(f"{n}: {v}" for n, v in _checks(rollout))),
            ("on a failed check", "canary weight set to 0 and the canary pointer put back" if rollout else None),
        )),
        tables=(_weights(inputs), _rollout_table(rollout)),
    )  # fmt: skip
    logging = Section(
        "3-logging", "Logging (record keeping)",
        sources=(GATEWAY_FILE, WORKSPACE_FILE),
        facts=facts((
            ("request log", f"{log.path} under the llmops home" if log and log.enabled else None),
            ("share of requests whose input and answer are captured (PII redacted)", route.capture if route else None),
            ("request logs kept (days)", retention.get("request_logs_days")),
            ("feedback kept (days)", retention.get("feedback_days")),
            ("audit records kept (days)", retention.get("audit_days") or "forever (no limit set)"),
        )),
    )  # fmt: skip
    findings = [f for f in all_findings(inputs) if f.passed is not True]
    limits = Section(
        "3-limitations", "Capabilities and limitations as evaluated",
        sources=eval_sources(inputs),
        text=tuple(f"{f.metric} {f.rule}: {result_text(f)} (record {f.record})" for f in findings)
        or ("Every gate checkable from the recorded metrics passed." if all_findings(inputs)
            else f"Gate results: {NOT_RECORDED}.",),
        tables=(bias_table(inputs),),
    )  # fmt: skip
    return Section(
        "3", "3. Monitoring, functioning and control of the AI system",
        sources=(GATEWAY_FILE, ROLLOUT_FILE, f"registry: route state of {inputs.route}"),
        sections=(control, logging, limits),
    )  # fmt: skip


def _alerts(spec: RouteMonitorSpec | None) -> Table:
    rows = [] if spec is None else [(a.name, ", ".join(a.signals), a.level, a.for_, ", ".join(a.actions) or "none")
                                    for a in spec.alerts]  # fmt: skip
    return table(("alert", "signals", "level", "for (consecutive windows)", "actions"), rows,
                 f"Alert rules ({MONITOR_FILE})")  # fmt: skip


def risk_management(inputs: ReportInputs) -> Section:
    """Annex IV 5: the hooks that stop a bad release: eval gates, bias gates, rollout aborts, monitor alerts."""
    findings = all_findings(inputs)
    gate_rows = [(f.suite, f.metric, f.rule, f.value, result_text(f)) for f in findings]
    bias_rows = [row for row in gate_rows if row[1].startswith("bias_")]
    columns = ("suite", "metric", "rule", "recorded value", "result")
    rollout = _route_rollout(inputs)
    return Section(
        "5", "5. Risk management system (Article 9)",
        sources=(*eval_sources(inputs), "evals/*.yaml (gates)", ROLLOUT_FILE, MONITOR_FILE),
        text=("`llmops promote` refuses a release without a passing record of every required suite of the route "
              "(or --force with a reason, audited); the records that allowed this release are listed in 2(g).",),
        tables=(
            table(columns, gate_rows, "Eval gates"),
            table(columns, bias_rows, "Bias gates"),
            table(("check", "settings"), _checks(rollout), f"Rollout aborts ({ROLLOUT_FILE})"),
            _alerts(_route_monitor(inputs)),
        ),
    )  # fmt: skip


def _signals(spec: RouteMonitorSpec | None) -> Table:
    rows: list[tuple[str, Any, str]] = []
    if spec is not None:
        for name in type(spec.signals).model_fields:
            value = getattr(spec.signals, name)
            if value is None:
                rows.append((name, "no", "not configured"))
                continue
            dump = value.model_dump(mode="json", exclude_none=True)
            enabled = dump.pop("enabled", True)
            if "json_schema" in dump:
                dump["json_schema"] = "set (see the file)"
            rows.append((name, "yes" if enabled else "no", compact(dump)))
    return table(("signal", "enabled", "windows' thresholds and settings"), rows, f"Signals ({MONITOR_FILE})")


def _actions(inputs: ReportInputs) -> Table:
    rows: list[tuple[str, str, str]] = []
    for name, action in inputs.monitor.actions.items() if inputs.monitor else []:
        if isinstance(action, WebhookAction):
            target = f"URL from ${action.url_env}" if action.url_env else "URL in the file"
            rows.append((name, "webhook", f"{target}, {action.retries} retries"))
        elif isinstance(action, RetrainAction):
            rows.append((name, "retrain", f"candidate adapter from captured traffic (min {action.min_records} "
                                          "records), evaluated, never promoted"))  # fmt: skip
    return table(("action", "type", "what it does"), rows, "Actions")


def post_market(inputs: ReportInputs) -> Section:
    """Annex IV 9: the post-market monitoring plan from ``serving/monitor.yaml``."""
    spec = _route_monitor(inputs)
    mon = inputs.monitor
    window = spec.window if spec else None
    return Section(
        "9", "9. Post-market monitoring plan (Article 72)",
        sources=(MONITOR_FILE, WORKSPACE_FILE),
        facts=facts((
            ("route monitored", (inputs.route if spec else None)),
            ("window", compact(window) if window else None),
            ("reference", compact(spec.reference) if spec else None),
            ("request log read", mon.request_log if mon else None),
            ("feedback log read", mon.feedback_log if mon else None),
            ("interval of `llmops monitor serve` (s)", mon.interval_s if mon else None),
            ("reports written to", f"{mon.output_dir}/ under the llmops home" if mon else None),
        )),
        tables=(_signals(spec), _alerts(spec), _actions(inputs)),
    )  # fmt: skip
