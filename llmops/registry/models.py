"""Base models in the registry: record a built model once, by sha256.

A base model is recorded as a version of a registered model (default ``reference-base``) whose tags
carry its sha256, local path and kind; the files themselves are logged as run artifacts, so an MLflow
server elsewhere holds a copy. Recording is idempotent: a version with the same sha256 is reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmops.models.reference import ReferenceModel
from llmops.registry import tags
from llmops.registry.backend import Store

if TYPE_CHECKING:
    pass

MODELS_EXPERIMENT = "llmops-models"
REFERENCE_NAME = "reference-base"


@dataclass(frozen=True)
class BaseModelRecord:
    name: str
    version: int
    sha256: str
    run_id: str | None
    created: bool


class BaseModelStore(Store):
    """Record base models (by sha256) as registered model versions."""

    def record(self, model: ReferenceModel, *, name: str = REFERENCE_NAME) -> BaseModelRecord:
        """Register ``model`` as a version of ``name`` unless a version with its sha256 exists."""
        from mlflow.exceptions import MlflowException

        client = self._client
        try:
            client.create_registered_model(
                name, tags={tags.KIND: tags.KIND_BASE_MODEL}, description="Base models recorded by llmops, by sha256."
            )
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                self._backend.fail(f"cannot create registered model {name}", exc)
        with self._backend.call(f"cannot list versions of {name}"):
            for mv in client.search_model_versions(f"name = '{name}'"):
                if mv.tags.get(tags.SHA256) == model.sha256:
                    return BaseModelRecord(name, int(mv.version), model.sha256, mv.run_id, created=False)
        experiment = self._backend.ensure_experiment(MODELS_EXPERIMENT)
        with self._backend.call(f"cannot record base model {name}"):
            run = client.create_run(
                experiment, run_name=f"{name}-{model.sha256[:12]}", tags={tags.KIND: tags.KIND_BASE_MODEL}
            )
            run_id = run.info.run_id
            for key, value in (("seed", model.seed), ("steps", model.steps), ("params", model.params)):
                client.log_param(run_id, key, value)
            client.log_metric(run_id, "pretrain_end_loss", model.end_loss)
            client.log_artifacts(run_id, str(model.path), artifact_path="model")
            client.set_terminated(run_id)
            mv = client.create_model_version(
                name,
                f"{run.info.artifact_uri}/model",
                run_id=run_id,
                tags={tags.KIND: tags.KIND_BASE_MODEL, tags.SHA256: model.sha256, tags.LOCAL_PATH: str(model.path)},
                description=f"reference model seed={model.seed} steps={model.steps} params={model.params}",
            )
        return BaseModelRecord(name, int(mv.version), model.sha256, run_id, created=True)
