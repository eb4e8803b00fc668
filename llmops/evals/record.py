"""Eval records: one MLflow run per evaluated release, in experiment ``llmops-evals``.

Tags name the suite (and its hash), the release's exact versions and the verdict; metrics are the
suite's scores; artifacts are the reports. Promotion looks records up by (suite hash, release key).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from llmops.config.workspace import Workspace
from llmops.errors import NotFoundError
from llmops.evals.report import EvalOutcome
from llmops.evals.scoring import ReleaseScores, finite
from llmops.registry.tracking import ensure_experiment
from llmops.releases import TAG_ADAPTER, TAG_KEY, TAG_PROMPT

if TYPE_CHECKING:
    from mlflow import MlflowClient

EVAL_EXPERIMENT = "llmops-evals"
TAG_SUITE = "llmops.eval.suite"
TAG_SUITE_HASH = "llmops.eval.suite_sha256"
TAG_VERDICT = "llmops.eval.verdict"
TAG_KIND = "llmops.kind"


@dataclass(frozen=True)
class EvalRecord:
    run_id: str
    suite: str
    suite_hash: str
    verdict: str
    adapter: str
    prompt: str
    release_key: str
    metrics: dict[str, float]
    start_ms: int
    artifact_uri: str


def _record(run: object) -> EvalRecord:
    tags = run.data.tags  # type: ignore[attr-defined]
    info = run.info  # type: ignore[attr-defined]
    return EvalRecord(
        run_id=info.run_id,
        suite=tags.get(TAG_SUITE, ""),
        suite_hash=tags.get(TAG_SUITE_HASH, ""),
        verdict=tags.get(TAG_VERDICT, ""),
        adapter=tags.get(TAG_ADAPTER, ""),
        prompt=tags.get(TAG_PROMPT, ""),
        release_key=tags.get(TAG_KEY, ""),
        metrics=dict(run.data.metrics),  # type: ignore[attr-defined]
        start_ms=int(info.start_time or 0),
        artifact_uri=info.artifact_uri,
    )


def log_scores(
    client: MlflowClient,
    ws: Workspace,
    suite: str,
    suite_hash: str,
    scores: ReleaseScores,
    verdict: str,
    reports: dict[str, Path] | None = None,
) -> str:
    """Write one eval record; return its run id."""
    exp = ensure_experiment(client, ws, EVAL_EXPERIMENT)
    tags = {
        TAG_KIND: "eval-record", TAG_SUITE: suite, TAG_SUITE_HASH: suite_hash, TAG_VERDICT: verdict,
        **scores.release.tags(),
    }  # fmt: skip
    run = client.create_run(exp, run_name=f"{suite}:{scores.release.adapter_ref}", tags=tags)
    run_id = run.info.run_id
    for key, value in finite(scores.metrics).items():
        client.log_metric(run_id, key, value)
    client.log_param(run_id, "cases", len(scores.cases))
    client.log_param(run_id, "cached_outputs", scores.cached)
    for path in (reports or {}).values():
        client.log_artifact(run_id, str(path))
    client.set_terminated(run_id, "FINISHED")
    return str(run_id)


def log_outcome(client: MlflowClient, ws: Workspace, outcome: EvalOutcome, reports: dict[str, Path]) -> str:
    verdict = "pass" if outcome.passed else "fail"
    return log_scores(client, ws, outcome.suite, outcome.suite_hash, outcome.candidate, verdict, reports)


def find_records(
    client: MlflowClient,
    *,
    suite_hash: str | None = None,
    release_key: str | None = None,
    verdict: str | None = None,
    adapter: str | None = None,
    prompt: str | None = None,
) -> list[EvalRecord]:
    """Eval records matching every given field, newest first."""
    exp = client.get_experiment_by_name(EVAL_EXPERIMENT)
    if exp is None:
        return []
    clauses = [f"tags.`{TAG_KIND}` = 'eval-record'"]
    for tag, value in ((TAG_SUITE_HASH, suite_hash), (TAG_KEY, release_key), (TAG_VERDICT, verdict),
                       (TAG_ADAPTER, adapter), (TAG_PROMPT, prompt)):  # fmt: skip
        if value is not None:
            clauses.append(f"tags.`{tag}` = '{value}'")
    runs = client.search_runs([exp.experiment_id], " and ".join(clauses), order_by=["attributes.start_time DESC"])
    return [_record(r) for r in runs]


def get_record(client: MlflowClient, run_id: str) -> EvalRecord:
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        raise NotFoundError(f"eval record {run_id} not found: {exc.message}") from exc
    if run.data.tags.get(TAG_KIND) != "eval-record":
        raise NotFoundError(f"run {run_id} is not an llmops eval record")
    return _record(run)
