"""Trigger records and probe records: MLflow runs in experiment ``llmops-monitoring``.

A **trigger** (tag ``llmops.kind=trigger``) is written when an alert rule of ``serving/monitor.yaml``
held for its ``for:`` windows: tags name the route (``llmops.route``), the rule, the level, the window bounds and the
release of each target; metrics are the firing signals' values (``TARGET/SIGNAL``, as on monitoring records); ``trigger.json`` holds the evidence.
Its actions write their outcome back as tags (``llmops.webhook.NAME.status``, ``llmops.retrain.pid``).
A **probe** record (``llmops.kind=probe``) holds one ``llmops monitor probe`` of a route's live bias.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmops.errors import NotFoundError
from llmops.registry import tags
from llmops.registry.backend import Store
from llmops.registry.monitoring import MONITORING_EXPERIMENT, ROUTE

KIND_TRIGGER = "trigger"
KIND_PROBE = "probe"

TRIGGER_ROUTE = ROUTE  # llmops.route, as on monitoring records
TRIGGER_RULE = "llmops.trigger.rule"
TRIGGER_LEVEL = "llmops.trigger.level"
TRIGGER_WINDOW_START = "llmops.trigger.window_start"  # epoch seconds: the oldest held window's start
TRIGGER_WINDOW_END = "llmops.trigger.window_end"  # epoch seconds: the newest held window's end
TRIGGER_RELEASE_PREFIX = "llmops.trigger.release."  # + target: canonical JSON of what the target served
PROBE_ROUTE = ROUTE
PROBE_LEVEL = "llmops.probe.level"
PROBE_RELEASE = "llmops.probe.release"
TRIGGER_FILE = "trigger.json"
PROBE_FILE = "probe.json"


@dataclass(frozen=True)
class TriggerRecord:
    """One trigger as stored: where it came from, its window and the tags its actions wrote."""

    run_id: str
    route: str
    rule: str
    level: str
    window_start: float
    window_end: float
    tags: dict[str, str]
    metrics: dict[str, float]
    start_ms: int


def _record(run: Any) -> TriggerRecord:
    found = dict(run.data.tags)

    def number(key: str) -> float:
        try:
            return float(found.get(key, "nan"))
        except ValueError:
            return float("nan")

    return TriggerRecord(
        run_id=str(run.info.run_id),
        route=found.get(TRIGGER_ROUTE, ""),
        rule=found.get(TRIGGER_RULE, ""),
        level=found.get(TRIGGER_LEVEL, ""),
        window_start=number(TRIGGER_WINDOW_START),
        window_end=number(TRIGGER_WINDOW_END),
        tags=found,
        metrics=dict(run.data.metrics),
        start_ms=int(run.info.start_time or 0),
    )


def _finite(metrics: Mapping[str, float | None]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(v)}


class TriggerStore(Store):
    """Write, find and annotate trigger records (and write probe records)."""

    def record(
        self,
        *,
        route: str,
        rule: str,
        level: str,
        window: tuple[float, float],
        release: Mapping[str, Any],
        metrics: Mapping[str, float | None],
        evidence: Mapping[str, Any],
    ) -> str:
        """Write one trigger (finished run; its actions may still tag it later); return its run id."""
        values = {
            tags.KIND: KIND_TRIGGER,
            TRIGGER_ROUTE: route,
            TRIGGER_RULE: rule,
            TRIGGER_LEVEL: level,
            TRIGGER_WINDOW_START: repr(float(window[0])),
            TRIGGER_WINDOW_END: repr(float(window[1])),
        }
        for target, served in release.items():
            values[TRIGGER_RELEASE_PREFIX + target] = json.dumps(served, sort_keys=True, separators=(",", ":"))[:5000]
        return self._write(f"trigger:{route}:{rule}", values, metrics, evidence, TRIGGER_FILE,
                           f"cannot write a trigger of route {route} rule {rule}")  # fmt: skip

    def _write(
        self, name: str, values: Mapping[str, str], metrics: Mapping[str, float | None],
        evidence: Mapping[str, Any], file: str, failure: str,
    ) -> str:  # fmt: skip
        """One finished run of the monitoring experiment: tags, finite metrics, the evidence as ``file``."""
        experiment = self._backend.ensure_experiment(MONITORING_EXPERIMENT)
        with self._backend.call(failure):
            run = self._client.create_run(experiment, run_name=name, tags=dict(values))
            run_id = str(run.info.run_id)
            for key, value in _finite(metrics).items():
                self._client.log_metric(run_id, key, value)
            self._client.log_text(run_id, json.dumps({**evidence, "run_id": run_id}, indent=2), file)
            self._client.set_terminated(run_id, "FINISHED")
        return run_id

    def latest(self, route: str, rule: str) -> TriggerRecord | None:
        """The newest trigger of ``route``'s ``rule``; None when it never fired."""
        experiment = self._backend.experiment_id(MONITORING_EXPERIMENT)
        if experiment is None:
            return None
        query = (
            f"tags.`{tags.KIND}` = '{KIND_TRIGGER}' and tags.`{TRIGGER_ROUTE}` = '{route}'"
            f" and tags.`{TRIGGER_RULE}` = '{rule}'"
        )
        with self._backend.call(f"cannot search the triggers of route {route}"):
            runs = self._client.search_runs([experiment], query, order_by=["attributes.start_time DESC"], max_results=1)
        return _record(runs[0]) if runs else None

    def find(self, route: str | None = None) -> list[TriggerRecord]:
        """Triggers (of ``route`` when given), newest first."""
        experiment = self._backend.experiment_id(MONITORING_EXPERIMENT)
        if experiment is None:
            return []
        query = f"tags.`{tags.KIND}` = '{KIND_TRIGGER}'"
        if route is not None:
            query += f" and tags.`{TRIGGER_ROUTE}` = '{route}'"
        with self._backend.call("cannot search triggers"):
            runs = self._client.search_runs([experiment], query, order_by=["attributes.start_time DESC"])
        return [_record(r) for r in runs]

    def get(self, run_id: str) -> TriggerRecord:
        run = self._backend.lookup(f"cannot read trigger {run_id}", lambda: self._client.get_run(run_id))
        if run is None or run.data.tags.get(tags.KIND) != KIND_TRIGGER:
            raise NotFoundError(f"trigger {run_id} not found")
        return _record(run)

    def evidence(self, run_id: str) -> dict[str, Any]:
        """The ``trigger.json`` of trigger ``run_id`` (what its webhook received)."""
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as tmp, self._backend.call(f"cannot read trigger {run_id}'s evidence"):
            path = self._client.download_artifacts(run_id, TRIGGER_FILE, tmp)
            loaded: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
        return loaded

    def set_tags(self, run_id: str, values: Mapping[str, str]) -> None:
        """Tag trigger ``run_id`` (its actions' outcomes, links to the jobs and evals it started)."""
        from mlflow.entities import RunTag

        with self._backend.call(f"cannot tag trigger {run_id}"):
            self._client.log_batch(run_id, tags=[RunTag(k, str(v)[:5000]) for k, v in values.items()])

    def record_probe(
        self,
        *,
        route: str,
        level: str,
        release: Mapping[str, Any],
        metrics: Mapping[str, float | None],
        evidence: Mapping[str, Any],
    ) -> str:
        """Write one probe record of ``route``'s live bias; return its run id."""
        values = {
            tags.KIND: KIND_PROBE,
            PROBE_ROUTE: route,
            PROBE_LEVEL: level,
            PROBE_RELEASE: json.dumps(release, sort_keys=True, separators=(",", ":"))[:5000],
        }
        return self._write(
            f"probe:{route}", values, metrics, evidence, PROBE_FILE, f"cannot write a probe record of route {route}"
        )
