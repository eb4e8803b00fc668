"""Tracked runs: one MLflow run per fine-tune job (params, tags, artifacts, metrics; dataset inputs are logged by
:meth:`llmops.registry.datasets.DatasetStore.log_input`).

Everything goes through the registry's client and an explicit run id (no global "active run"), so a
resumed job reopens *its* run and nothing leaks between jobs in one process. Metrics are buffered and
sent in batches.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmops.registry.backend import Backend

if TYPE_CHECKING:
    from mlflow import MlflowClient

_FLUSH_EVERY_S = 2.0
_FLUSH_EVERY_N = 50


class TrackedRun:
    """One MLflow run, written through an explicit run id."""

    def __init__(self, backend: Backend, run_id: str) -> None:
        self._backend = backend
        self.run_id = run_id
        self._pending: list[Any] = []
        self._last_flush = time.monotonic()

    @property
    def _client(self) -> MlflowClient:
        return self._backend.client

    # -- params, tags, artifacts ---------------------------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        with self._backend.call(f"cannot log params of run {self.run_id}"):
            for start in range(0, len(items), 100):
                self._client.log_batch(self.run_id, params=items[start : start + 100])

    def set_tags(self, values: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        with self._backend.call(f"cannot tag run {self.run_id}"):
            self._client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in values.items()])

    def log_file(self, path: Path, artifact_path: str | None = None) -> None:
        with self._backend.call(f"cannot log {path.name} to run {self.run_id}"):
            self._client.log_artifact(self.run_id, str(path), artifact_path=artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        with self._backend.call(f"cannot log {artifact_file} to run {self.run_id}"):
            self._client.log_text(self.run_id, text, artifact_file)

    # -- metrics -------------------------------------------------------------------------------
    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        """Buffer one step's metrics; send when enough are pending or a couple of seconds passed."""
        from mlflow.entities import Metric

        now_ms = int(time.time() * 1000)
        self._pending += [Metric(k, float(v), now_ms, step) for k, v in metrics.items()]
        if len(self._pending) >= _FLUSH_EVERY_N or time.monotonic() - self._last_flush > _FLUSH_EVERY_S:
            self.flush()

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        with self._backend.call(f"cannot log metrics of run {self.run_id}"):
            for start in range(0, len(pending), 500):
                self._client.log_batch(self.run_id, metrics=pending[start : start + 500])
        self._last_flush = time.monotonic()

    def finish(self, status: str) -> None:
        """Flush metrics and close the run as FINISHED, FAILED or KILLED."""
        self.flush()
        with self._backend.call(f"cannot close run {self.run_id}"):
            self._client.set_terminated(self.run_id, status=status)


@dataclass(frozen=True)
class RunSummary:
    """What a finished (or running) run shows: status, latest metrics, tags."""

    run_id: str
    status: str
    metrics: dict[str, float]
    tags: dict[str, str]


class RunStore:
    """Start, reopen and read tracked runs."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def start(self, experiment: str, run_name: str, values: Mapping[str, str]) -> TrackedRun:
        experiment_id = self._backend.ensure_experiment(experiment)
        with self._backend.call(f"cannot start a run in {experiment}"):
            run = self._backend.client.create_run(experiment_id, run_name=run_name, tags=dict(values))
        return TrackedRun(self._backend, run.info.run_id)

    def find(self, run_id: str) -> RunSummary | None:
        """The run ``run_id``; None when there is no such run."""
        run = self._backend.lookup(f"cannot read run {run_id}", lambda: self._backend.client.get_run(run_id))
        if run is None:
            return None
        return RunSummary(run_id, str(run.info.status), dict(run.data.metrics), dict(run.data.tags))

    def set_tags(self, run_id: str, values: Mapping[str, str]) -> None:
        """Tag an existing run (any status), e.g. link a monitor trigger to the work it started."""
        TrackedRun(self._backend, run_id).set_tags(values)

    def reopen(self, run_id: str) -> TrackedRun:
        """Continue the run of an interrupted job (status back to RUNNING)."""
        with self._backend.call(f"cannot reopen run {run_id}"):
            self._backend.client.update_run(run_id, status="RUNNING")
        return TrackedRun(self._backend, run_id)
