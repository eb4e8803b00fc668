"""Monitoring records: one MLflow run per route per ``llmops monitor run``, in experiment ``llmops-monitoring``.

Tags: ``llmops.kind=monitoring``, ``llmops.route``, the release of the route's first target
(:func:`~llmops.registry.pointers.release_tags`) and ``llmops.monitor.release.TARGET`` (the release key
each target served). Metrics: each signal's value in the newest window as ``TARGET/SIGNAL`` and its
level as ``TARGET/SIGNAL/level`` (:data:`~llmops.monitor.levels.LEVEL_VALUES`); route-wide signals use
the target ``route``. Artifacts: the run's reports. The store also reads what the monitor's reference
needs from other runs: a fine-tune run's training data inputs and a JSON artifact (an eval record's
``report.json``).
"""

from __future__ import annotations

import json
import math
import tempfile
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


@dataclass(frozen=True)
class DatasetInput:
    """A data file a run logged as input: its context (``train``, ``eval``), workspace path and fingerprint."""

    context: str
    path: str
    fingerprint: str


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

    def dataset_inputs(self, run_id: str) -> list[DatasetInput]:
        """The data files run ``run_id`` logged as inputs (empty when the run does not exist)."""
        run = self._backend.lookup(f"cannot read run {run_id}", lambda: self._client.get_run(run_id))
        if run is None or run.inputs is None:
            return []
        found = []
        for item in run.inputs.dataset_inputs or []:
            values = {t.key: t.value for t in item.tags or []}
            found.append(
                DatasetInput(
                    context=values.get("mlflow.data.context", ""),
                    path=values.get(tags.SOURCE_PATH, ""),
                    fingerprint=values.get(tags.SHA256, ""),
                )
            )
        return found

    def artifact_json(self, run_id: str, artifact: str) -> Any | None:
        """The JSON artifact ``artifact`` of run ``run_id``; None when the run or the file does not exist."""
        import mlflow.artifacts

        listed = self._backend.lookup(
            f"cannot list the artifacts of run {run_id}", lambda: self._client.list_artifacts(run_id)
        )
        if listed is None or artifact not in {a.path for a in listed}:
            return None
        with tempfile.TemporaryDirectory() as tmp:
            path = self._backend.lookup(
                f"cannot download {artifact} of run {run_id}",
                lambda: mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path=artifact, dst_path=tmp, tracking_uri=self._backend.uri
                ),
            )
            if path is None or not Path(path).is_file():
                return None
            return json.loads(Path(path).read_text(encoding="utf-8"))
