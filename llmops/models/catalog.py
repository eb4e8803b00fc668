"""Base models in the registry: record a built model once, resolve ``base_model`` settings.

A base model is recorded as a version of a registered model (default ``reference-base``) whose
tags carry its sha256, local path and kind; the files themselves are logged as run artifacts, so
an MLflow server elsewhere holds a copy. Recording is idempotent: a version with the same sha256
is reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from llmops.config.workspace import Workspace
from llmops.models.reference import ReferenceModel
from llmops.registry.tracking import ensure_experiment

if TYPE_CHECKING:
    from mlflow import MlflowClient

MODELS_EXPERIMENT = "llmops-models"
REFERENCE_NAME = "reference-base"
TAG_KIND = "llmops.kind"
TAG_SHA = "llmops.sha256"
TAG_PATH = "llmops.local_path"


@dataclass(frozen=True)
class BaseModelRecord:
    name: str
    version: int
    sha256: str
    run_id: str | None
    created: bool


def record_base_model(
    client: MlflowClient, ws: Workspace, model: ReferenceModel, *, name: str = REFERENCE_NAME
) -> BaseModelRecord:
    """Register ``model`` as a version of ``name`` unless a version with its sha256 exists."""
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(
            name, tags={TAG_KIND: "base-model"}, description="Base models recorded by llmops, by sha256."
        )
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    for mv in client.search_model_versions(f"name = '{name}'"):
        if mv.tags.get(TAG_SHA) == model.sha256:
            return BaseModelRecord(name, int(mv.version), model.sha256, mv.run_id, created=False)
    exp = ensure_experiment(client, ws, MODELS_EXPERIMENT)
    run = client.create_run(exp, run_name=f"{name}-{model.sha256[:12]}", tags={TAG_KIND: "base-model"})
    run_id = run.info.run_id
    for key, value in (("seed", model.seed), ("steps", model.steps), ("params", model.params)):
        client.log_param(run_id, key, value)
    client.log_metric(run_id, "pretrain_end_loss", model.end_loss)
    client.log_artifacts(run_id, str(model.path), artifact_path="model")
    client.set_terminated(run_id)
    source = f"{run.info.artifact_uri}/model"
    mv = client.create_model_version(
        name,
        source,
        run_id=run_id,
        tags={TAG_KIND: "base-model", TAG_SHA: model.sha256, TAG_PATH: str(model.path)},
        description=f"reference model seed={model.seed} steps={model.steps} params={model.params}",
    )
    return BaseModelRecord(name, int(mv.version), model.sha256, run_id, created=True)


def resolve_base_model(ws: Workspace, base_model: str | None = None) -> str:
    """A loadable model id or path for a ``base_model`` setting (``reference`` is built if needed)."""
    from llmops.models.reference import ensure_reference_model
    from llmops.models.spec import DEFAULT_STEPS

    value = base_model or ws.settings.models.base_model
    if value == "reference":
        ref = ws.settings.models.reference
        return str(ensure_reference_model(ws.models_dir, seed=ref.seed, steps=ref.steps or DEFAULT_STEPS).path)
    path = Path(value).expanduser()
    if not path.is_absolute() and (ws.root / path).exists():
        return str((ws.root / path).resolve())
    return value
