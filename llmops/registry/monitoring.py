"""Monitoring records: one MLflow run per route per ``llmops monitor run``, in experiment ``llmops-monitoring``.

Tags: ``llmops.kind=monitoring``, ``llmops.route``, the release of the route's first target
(:func:`~llmops.registry.pointers.release_tags`) and ``llmops.monitor.release.TARGET`` (the release key
each target served). Metrics: each signal's value in the newest window as ``TARGET/SIGNAL`` and its
level as ``TARGET/SIGNAL/level`` (:data:`~llmops.monitor.levels.LEVEL_VALUES`); route-wide signals use
the target ``route``. Artifacts: the run's reports. The store also reads a JSON artifact of another
run (an eval record's ``report.json``) for the monitor's reference; a run's dataset inputs are
``registry.datasets.inputs`` (:mod:`llmops.registry.datasets`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmops.registry import tags
from llmops.registry.backend import Store
from llmops.registry.pointers import release_tags
from llmops.release import Release

MONITORING_EXPERIMENT = "llmops-monitoring"
KIND_MONITORING = "monitoring"
ROUTE = "llmops.route"
TARGET_RELEASE_PREFIX = "llmops.monitor.release."
LEVEL = "llmops.monitor.level"


@dataclass(frozen=True)
class MonitoringRecord:
    run_id: str
    route: str
    level: str
    metrics: dict[str, float]
    tags: dict[str, str]
    start_ms: int


def metric_key(target: str, signal: str) -> str:
    """The MLflow metric name of a signal of a target (``*`` cannot appear in a metric name: ``route``)."""
    return f"{'route' if target == '*' else target}/{signal}"


class MonitoringStore(Store):
    """Write monitoring records; read the inputs of a run and JSON artifacts for the reference."""

    def log(
        self,
        *,
        route: str,
        level: str,
        releases: Mapping[str, Release],
        metrics: Mapping[str, float],
        params: Mapping[str, Any] | None = None,
        artifacts: Iterable[Path] = (),
    ) -> str:
        """Write one monitoring record (non-finite metrics left out); return its run id."""
        experiment = self._backend.ensure_experiment(MONITORING_EXPERIMENT)
        values = {tags.KIND: KIND_MONITORING, ROUTE: route, LEVEL: level}
        exact = {t: r for t, r in releases.items() if r.is_exact}
        if exact:
            values.update(release_tags(next(iter(exact.values()))))
            values.update({f"{TARGET_RELEASE_PREFIX}{t}": r.key for t, r in exact.items()})
        from mlflow.entities import Metric, Param

        with self._backend.call(f"cannot write the monitoring record of route {route}"):
            run = self._client.create_run(experiment, run_name=f"monitor:{route}", tags=values)
            run_id = str(run.info.run_id)
            found = [Metric(k, float(v), 0, 0) for k, v in metrics.items() if math.isfinite(v)]
            for start in range(0, len(found), 500):
                self._client.log_batch(run_id, metrics=found[start : start + 500])
            items = [Param(k, str(v)[:6000]) for k, v in (params or {}).items()]
            if items:
                self._client.log_batch(run_id, params=items)
            for path in artifacts:
                self._client.log_artifact(run_id, str(path))
            self._client.set_terminated(run_id, "FINISHED")
        return run_id

    def find(self, route: str | None = None, *, limit: int = 100) -> list[MonitoringRecord]:
        """Monitoring records (of ``route``), newest first."""
        experiment = self._backend.experiment_id(MONITORING_EXPERIMENT)
        if experiment is None:
            return []
        query = f"tags.`{tags.KIND}` = '{KIND_MONITORING}'"
        if route is not None:
            query += f" and tags.`{ROUTE}` = '{route}'"
        with self._backend.call("cannot search monitoring records"):
            runs = self._client.search_runs(
                [experiment], query, order_by=["attributes.start_time DESC"], max_results=limit
            )
        return [
            MonitoringRecord(
                run_id=r.info.run_id,
                route=r.data.tags.get(ROUTE, ""),
                level=r.data.tags.get(LEVEL, ""),
                metrics=dict(r.data.metrics),
                tags=dict(r.data.tags),
                start_ms=int(r.info.start_time or 0),
            )
            for r in runs
        ]
