"""Triggers: an alert rule that held becomes a trigger record in MLflow, then its actions start.

:func:`fire` writes the record (route, rule, level, window bounds, the release of each target, the
firing signals' values, ``trigger.json``) and starts the rule's actions without blocking:

- ``webhook``: the trigger JSON POSTed from a background thread with retries and backoff
  (:mod:`llmops.monitor.webhook`); every attempt's outcome is tagged on the trigger
  (``llmops.webhook.NAME.status`` = retrying / delivered / failed, ``….attempts``, ``….error``);
- ``retrain``: ``llmops retrain ROUTE --trigger RUN_ID --min-records N [--job J] [--cluster C]`` as a detached child
  process (same Python), its output in ``<home>/<output_dir>/retrain-RUN_ID.log``, its pid tagged.

One episode, one trigger: while a rule keeps holding across runs (the rule's latest trigger ends at
or after this firing's oldest window start), :func:`fire` records nothing and returns None.
Before exiting, a one-shot monitor calls :func:`wait_for_actions` (a bounded wait for webhooks).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from llmops.config.monitor import MonitorFile, RetrainAction, WebhookAction
from llmops.config.workspace import Workspace
from llmops.errors import LlmopsError
from llmops.events import SILENT, Reporter
from llmops.monitor.alerts import Firing
from llmops.monitor.model import RouteResult
from llmops.monitor.webhook import AttemptCallback, resolve_url, start_delivery, wait_for_deliveries
from llmops.registry import Registry
from llmops.registry.monitoring import metric_key

log = logging.getLogger(__name__)
WEBHOOK_TAG = "llmops.webhook.{name}.{field}"
RETRAIN_PID = "llmops.retrain.pid"
RETRAIN_LOG = "llmops.retrain.log"
RETRAIN_COMMAND = "llmops.retrain.command"
RETRAIN_EXIT_CODE = "llmops.retrain.exit_code"
RETRAIN_SKIPPED = "llmops.retrain.skipped"  # why no retrain started (one already runs for the route)


def trigger_payload(firing: Firing, route: RouteResult) -> dict[str, Any]:
    """The trigger's evidence: what ``trigger.json`` holds and what a webhook receives."""
    return {
        "kind": "llmops.trigger",
        "route": firing.route,
        "rule": firing.rule.name,
        "level": firing.level,
        "signals": list(firing.rule.signals),
        "for": firing.rule.for_,
        "window": {"start": firing.start, "end": firing.end},
        "windows": [{"start": s, "end": e} for s, e in firing.windows],
        "results": [r.as_dict() for r in firing.results],
        "release": dict(route.release),
        "actions": list(firing.rule.actions),
        "time": time.time(),
    }


def _tagger(registry: Registry, run_id: str, name: str) -> AttemptCallback:
    def on_attempt(status: str, attempts: int, error: str | None) -> None:
        values = {
            WEBHOOK_TAG.format(name=name, field="status"): status,
            WEBHOOK_TAG.format(name=name, field="attempts"): str(attempts),
        }
        if error is not None:
            values[WEBHOOK_TAG.format(name=name, field="error")] = error
        registry.triggers.set_tags(run_id, values)

    return on_attempt


def _start_webhook(
    registry: Registry, name: str, action: WebhookAction, payload: Mapping[str, Any], reporter: Reporter
) -> dict[str, Any]:
    run_id = str(payload["run_id"])
    on_attempt = _tagger(registry, run_id, name)
    try:
        url = resolve_url(action, os.environ)
    except ValueError as exc:
        reporter.note(f"trigger {run_id}: webhook {name} failed: {exc}")
        on_attempt("failed", 0, str(exc))
        return {"type": "webhook", "status": "failed", "error": str(exc)}
    delivery = start_delivery(name, action, url, payload, on_attempt)
    reporter.note(f"trigger {run_id}: webhook {name} delivering in the background")
    return {"type": "webhook", "status": "started", "thread": delivery.name}


class RetrainWatch(threading.Thread):
    """Holds the retrain child process, reaps it and tags its exit code on the trigger."""

    def __init__(self, registry: Registry, run_id: str, proc: subprocess.Popen[bytes], route: str = "") -> None:
        super().__init__(name=f"llmops-retrain:{run_id}", daemon=True)
        self.trigger = run_id
        self.route = route
        self.proc = proc
        self._registry = registry

    def run(self) -> None:
        code = self.proc.wait()
        try:
            self._registry.triggers.set_tags(self.trigger, {RETRAIN_EXIT_CODE: str(code)})
        except LlmopsError as exc:  # the registry is down: say so, the retrain's own log has its outcome
            log.warning("trigger %s: cannot record the retrain's exit code %s: %s", self.trigger, code, exc)


def retrain_command(route: str, run_id: str, action: RetrainAction, logs: tuple[str, str] | None = None) -> list[str]:
    """``python -m llmops retrain ROUTE --trigger RUN_ID --min-records N [--job J] [--cluster C] ...``.

    ``logs``: the (request, feedback) log globs the monitor read, so the retrain reads the same traffic.
    """
    command = [sys.executable, "-m", "llmops", "retrain", route, "--trigger", run_id]
    command += ["--min-records", str(action.min_records)]
    if logs is not None:
        command += ["--request-log", logs[0], "--feedback-log", logs[1]]
    if action.max_steps is not None:
        command += ["--max-steps", str(action.max_steps)]
    if action.endpoint:
        command += ["--endpoint", action.endpoint]
    if action.job:
        command += ["--job", action.job]
    if action.cluster:
        command += ["--cluster", action.cluster]
    return command


def _start_retrain(
    registry: Registry, ws: Workspace, spec: MonitorFile, route: str, run_id: str, action: RetrainAction,
    reporter: Reporter,
) -> dict[str, Any]:  # fmt: skip
    log_path = ws.home / spec.output_dir / f"retrain-{run_id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    logs = (str(ws.home / spec.request_log), str(ws.home / spec.feedback_log))
    command = retrain_command(route, run_id, action, logs)
    env = {  # the child sees this monitor's workspace and registry, however they were chosen
        **os.environ,
        "LLMOPS_WORKSPACE": str(ws.root),
        "LLMOPS_HOME": str(ws.home),
        "LLMOPS_CACHE_DIR": str(ws.cache_dir),
        "LLMOPS_ARTIFACT_ROOT": str(ws.artifact_root),
        "MLFLOW_TRACKING_URI": ws.tracking_uri,
    }
    with log_path.open("ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own CLI, no shell
            command, cwd=ws.root, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    RetrainWatch(registry, run_id, proc, route).start()
    registry.triggers.set_tags(
        run_id, {RETRAIN_PID: str(proc.pid), RETRAIN_LOG: str(log_path), RETRAIN_COMMAND: " ".join(command[1:])}
    )
    reporter.note(f"trigger {run_id}: retrain started (pid {proc.pid}, log {log_path})")
    return {"type": "retrain", "status": "started", "pid": proc.pid, "log": str(log_path), "command": command}


def fire(
    registry: Registry,
    spec: MonitorFile,
    firing: Firing,
    route: RouteResult,
    *,
    ws: Workspace,
    reporter: Reporter = SILENT,
) -> dict[str, Any] | None:
    """Record ``firing`` as a trigger and start its actions; None when its episode already has a trigger."""
    store = registry.triggers
    latest = store.latest(firing.route, firing.rule.name)
    if latest is not None and latest.window_end >= firing.start:
        return None
    payload = trigger_payload(firing, route)
    metrics = {metric_key(r.target, r.signal): r.value for r in firing.results}
    run_id = store.record(
        route=firing.route, rule=firing.rule.name, level=firing.level, window=(firing.start, firing.end),
        release=route.release, metrics=metrics, evidence=payload,
    )  # fmt: skip
    payload["run_id"] = run_id
    reporter.note(f"route {firing.route}: alert rule {firing.rule.name} ({firing.level}) → trigger {run_id}")
    started: dict[str, Any] = {}
    for name in firing.rule.actions:
        action = spec.actions[name]
        if isinstance(action, WebhookAction):
            started[name] = _start_webhook(registry, name, action, payload, reporter)
        elif running := [w for w in _retrain_watches() if w.route == firing.route]:
            # several rules firing together (or an episode while a retrain still runs) train one candidate
            reason = f"the retrain of trigger {running[0].trigger} is still running"
            registry.triggers.set_tags(run_id, {RETRAIN_SKIPPED: reason})
            reporter.note(f"trigger {run_id}: retrain not started: {reason}")
            started[name] = {"type": "retrain", "status": "skipped", "reason": reason, "by": running[0].trigger}
        else:
            started[name] = _start_retrain(registry, ws, spec, firing.route, run_id, action, reporter)
    return {**payload, "started": started}


def _retrain_watches(run_id: str | None = None) -> list[RetrainWatch]:
    found = [t for t in threading.enumerate() if isinstance(t, RetrainWatch) and t.is_alive()]
    return [t for t in found if run_id is None or t.trigger == run_id]


def wait_for_actions(timeout_s: float = 10.0, *, retrain: bool = False) -> list[str]:
    """Wait up to ``timeout_s`` for webhook deliveries (and retrain children, with ``retrain``).

    Returns a line per action still unfinished (``webhook NAME of trigger RUN_ID: retrying, 3 attempts``).
    """
    deadline = time.monotonic() + timeout_s
    left = wait_for_deliveries(timeout_s)
    lines = [
        f"webhook {d.action_name} of trigger {d.trigger}: {d.status}, {d.attempts} attempt(s)"
        + (f", last error: {d.error}" if d.error else "")
        for d in left
    ]
    if retrain:
        for watch in _retrain_watches():
            watch.join(max(0.0, deadline - time.monotonic()))
        lines += [f"retrain of trigger {w.trigger}: still running (pid {w.proc.pid})" for w in _retrain_watches()]
    return lines


def wait_retrain(trigger: Mapping[str, Any], timeout_s: float, *, registry: Registry | None = None) -> int | None:
    """Wait up to ``timeout_s`` for the retrain started by ``trigger`` (what :func:`fire` returned).

    Returns its exit code; None while it still runs. A retrain that already ended (or that another
    process started) is read back from the trigger's ``llmops.retrain.exit_code`` tag when ``registry``
    is given.
    """
    run_id = str(trigger.get("run_id", ""))
    started = trigger.get("started", {})
    pids = [int(a["pid"]) for a in started.values() if isinstance(a, Mapping) and a.get("type") == "retrain"]
    deadline = time.monotonic() + timeout_s
    for watch in _retrain_watches(run_id):
        watch.join(max(0.0, deadline - time.monotonic()))
        if watch.is_alive():
            return None
        return watch.proc.returncode
    for pid in pids:  # not a running child of ours: wait for it to disappear
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.2)
    if registry is None or not run_id:
        return None
    code = registry.triggers.get(run_id).tags.get(RETRAIN_EXIT_CODE)
    return int(code) if code is not None and code.lstrip("-").isdigit() else None
