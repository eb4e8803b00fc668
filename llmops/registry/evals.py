"""Eval records: one MLflow run per evaluated release, in experiment ``llmops-evals``.

Tags name the suite (and its hash), the exact release (:func:`~llmops.registry.pointers.release_tags`)
and the verdict; metrics are the suite's scores; artifacts are the reports; dataset inputs are the stored
case files (:mod:`llmops.registry.datasets`, context ``eval-cases``). Promotion looks records up by suite
hash and release.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmops.errors import NotFoundError
from llmops.registry import tags
from llmops.registry.backend import Store
from llmops.registry.datasets import DatasetInfo, DatasetStore
from llmops.registry.pointers import release_from_tags, release_tags
from llmops.release import Release

if TYPE_CHECKING:
    pass

EVAL_EXPERIMENT = "llmops-evals"


@dataclass(frozen=True)
class EvalRecord:
    run_id: str
    suite: str
    suite_hash: str
    verdict: str
    release: Release
    metrics: dict[str, float]
    start_ms: int
    artifact_uri: str

    @property
    def release_key(self) -> str:
        return self.release.key


def _record(run: Any) -> EvalRecord:
    found = dict(run.data.tags)
    info = run.info
    return EvalRecord(
        run_id=info.run_id,
        suite=found.get(tags.EVAL_SUITE, ""),
        suite_hash=found.get(tags.EVAL_SUITE_SHA256, ""),
        verdict=found.get(tags.EVAL_VERDICT, ""),
        release=release_from_tags(found, f"eval record {info.run_id}"),
        metrics=dict(run.data.metrics),
        start_ms=int(info.start_time or 0),
        artifact_uri=info.artifact_uri,
    )


class EvalRecordStore(Store):
    """Write and find eval records."""

    def log(
        self,
        *,
        suite: str,
        suite_hash: str,
        release: Release,
        verdict: str,
        metrics: Mapping[str, float],
        params: Mapping[str, Any] | None = None,
        artifacts: Iterable[Path] = (),
        inputs: Iterable[DatasetInfo] = (),
    ) -> str:
        """Write one eval record (NaN and infinite metrics are left out), with ``inputs`` (stored datasets)
        logged as its dataset inputs under their kind as context; return its run id."""
        experiment = self._backend.ensure_experiment(EVAL_EXPERIMENT)
        values = {
            tags.KIND: tags.KIND_EVAL_RECORD,
            tags.EVAL_SUITE: suite,
            tags.EVAL_SUITE_SHA256: suite_hash,
            tags.EVAL_VERDICT: verdict,
            **release_tags(release),
        }
        label = str(release.adapter) if release.adapter else "base"
        with self._backend.call(f"cannot write the eval record of suite {suite}"):
            run = self._client.create_run(experiment, run_name=f"{suite}:{label}", tags=values)
            run_id = str(run.info.run_id)
            for key, value in metrics.items():
                if math.isfinite(value):
                    self._client.log_metric(run_id, key, value)
            for key, param in (params or {}).items():
                self._client.log_param(run_id, key, param)
            for path in artifacts:
                self._client.log_artifact(run_id, str(path))
            for info in inputs:
                DatasetStore(self._backend).log_input(run_id, info, context=info.kind)
            self._client.set_terminated(run_id, "FINISHED")
        return run_id

    def find(
        self,
        *,
        suite_hash: str | None = None,
        release_key: str | None = None,
        verdict: str | None = None,
    ) -> list[EvalRecord]:
        """Eval records matching every given field, newest first."""
        experiment = self._backend.experiment_id(EVAL_EXPERIMENT)
        if experiment is None:
            return []
        clauses = [f"tags.`{tags.KIND}` = '{tags.KIND_EVAL_RECORD}'"]
        for tag, value in ((tags.EVAL_SUITE_SHA256, suite_hash), (tags.RELEASE_KEY, release_key),
                           (tags.EVAL_VERDICT, verdict)):  # fmt: skip
            if value is not None:
                clauses.append(f"tags.`{tag}` = '{value}'")
        with self._backend.call("cannot search eval records"):
            runs = self._client.search_runs(
                [experiment], " and ".join(clauses), order_by=["attributes.start_time DESC"]
            )
        return [_record(r) for r in runs]

    def get(self, run_id: str) -> EvalRecord:
        run = self._backend.lookup(f"cannot read eval record {run_id}", lambda: self._client.get_run(run_id))
        if run is None:
            raise NotFoundError(f"eval record {run_id} not found")
        if run.data.tags.get(tags.KIND) != tags.KIND_EVAL_RECORD:
            raise NotFoundError(f"run {run_id} is not an llmops eval record")
        return _record(run)

    def reports(self, record: EvalRecord) -> list[str]:
        """The artifact URIs of ``record``'s reports (``report.json``, ``report.html``, ``junit.xml``…), sorted."""
        listed = self._backend.lookup(
            f"cannot list the reports of eval record {record.run_id}",
            lambda: self._client.list_artifacts(record.run_id),
        )
        return sorted(f"{record.artifact_uri.rstrip('/')}/{a.path}" for a in listed or [] if not a.is_dir)
