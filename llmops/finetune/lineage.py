"""Lineage of a fine-tune in MLflow: one run per job, and the adapter version it registers.

The run (experiment :data:`EXPERIMENT`) holds everything needed to say where an adapter came from:

* params: every job setting (``lora.r``, ``training.lr``…), the resolved base model, the batching;
* tags: job name, job spec sha256, git commit, base model hash, prompt version, dataset fingerprint;
* artifacts: the job file itself (``job/NAME.yaml``), ``system.json``, the data report and, when
  warnings were allowed, ``data-warnings.txt``;
* dataset inputs: the train and eval files, logged as ``mlflow.log_input`` does (a pandas dataset with
  our sha256 fingerprint as digest, context ``training``/``eval``);
* metrics per step: ``loss``, ``learning_rate``, ``grad_norm``, ``tokens_per_s``, ``eval_loss``,
  then ``final_eval_loss``.

Everything goes through an ``MlflowClient`` and an explicit run id (no global "active run"), so a
resumed job reopens *its* run, and nothing leaks between jobs in one process.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmops.adapters.registry import LINEAGE_TAGS, AdapterRegistry, AdapterVersionInfo
from llmops.config.workspace import Workspace
from llmops.finetune.rows import RowFile
from llmops.registry.tracking import ensure_experiment

if TYPE_CHECKING:
    from mlflow import MlflowClient

EXPERIMENT = "llmops-finetune"
#: digests are stored in a 36-character column; the full sha256 goes in the input's tags
_DIGEST_CHARS = 32
_FLUSH_EVERY_S = 2.0
_FLUSH_EVERY_N = 50


def system_info() -> dict[str, Any]:
    """Where the job ran: versions, host, CPU/GPU, threads (a run artifact and ``system.*`` params)."""
    import peft
    import torch
    import transformers

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "cuda": torch.version.cuda or "none",
        "gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0,
    }
    if info["gpus"]:
        info["gpu_name"] = torch.cuda.get_device_name(0)
    return info


class FinetuneRun:
    """The MLflow run of one fine-tune job; metrics are buffered and sent in batches."""

    def __init__(self, client: MlflowClient, run_id: str) -> None:
        self.client = client
        self.run_id = run_id
        self._pending: list[Any] = []
        self._last_flush = time.monotonic()

    @classmethod
    def start(cls, client: MlflowClient, ws: Workspace, job: str, tags: Mapping[str, str]) -> FinetuneRun:
        experiment = ensure_experiment(client, ws, EXPERIMENT)
        run = client.create_run(
            experiment, run_name=f"{job}-{time.strftime('%Y%m%d-%H%M%S')}", tags={"llmops.kind": "finetune", **tags}
        )
        return cls(client, run.info.run_id)

    @classmethod
    def reopen(cls, client: MlflowClient, run_id: str) -> FinetuneRun:
        """Continue the run of an interrupted job (status back to RUNNING)."""
        client.update_run(run_id, status="RUNNING")
        return cls(client, run_id)

    # -- params, tags, artifacts ---------------------------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[start : start + 100])

    def set_tags(self, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    def log_file(self, path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path=artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def log_dataset(self, rows: RowFile, *, name: str, context: str) -> None:
        """Log a data file as a run input, with its fingerprint (what ``mlflow.log_input`` records)."""
        import pandas as pd
        from mlflow.data.pandas_dataset import from_pandas
        from mlflow.entities import DatasetInput, InputTag

        frame = pd.DataFrame({"row": [r.canonical for r in rows.rows]})
        with warnings.catch_warnings():
            # MLflow registers two local-file source types and says so on every call; either is right here
            warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
            dataset = from_pandas(
                frame, source=str(rows.path.resolve()), name=name, digest=rows.fingerprint[:_DIGEST_CHARS]
            )
        tags = [
            InputTag("mlflow.data.context", context),
            InputTag("llmops.sha256", rows.fingerprint),
            InputTag("llmops.path", rows.shown),
        ]
        self.client.log_inputs(self.run_id, datasets=[DatasetInput(dataset._to_mlflow_entity(), tags=tags)])

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
        for start in range(0, len(pending), 500):
            self.client.log_batch(self.run_id, metrics=pending[start : start + 500])
        self._last_flush = time.monotonic()

    def finish(self, status: str) -> None:
        """Flush metrics and close the run as FINISHED, FAILED or KILLED."""
        self.flush()
        self.client.set_terminated(self.run_id, status=status)


def lineage_tags(
    *,
    base_model: str,
    base_model_sha256: str,
    dataset_fingerprint: str,
    prompt_version: str,
    git_commit: str,
    job_spec_sha256: str,
    run_id: str,
    init_adapter: str = "",
) -> dict[str, str]:
    """The :data:`LINEAGE_TAGS` of an adapter version, all of them present (``""`` when not applicable)."""
    values = {
        "llmops.base_model": base_model,
        "llmops.base_model_sha256": base_model_sha256,
        "llmops.dataset_fingerprint": dataset_fingerprint,
        "llmops.prompt_version": prompt_version,
        "llmops.git_commit": git_commit,
        "llmops.job_spec_sha256": job_spec_sha256,
        "llmops.run_id": run_id,
        "llmops.init_adapter": init_adapter,
    }
    assert set(values) == set(LINEAGE_TAGS), "lineage tags out of step with llmops.adapters.registry"
    return values


def register_adapter(
    client: MlflowClient, ws: Workspace, name: str, adapter_dir: Path, run_id: str, lineage: Mapping[str, str]
) -> AdapterVersionInfo:
    """Register ``adapter_dir`` as the next version of adapter ``name`` (no alias is set)."""
    info = AdapterRegistry(client, ws).register(name, adapter_dir, run_id, dict(lineage))
    client.set_tag(run_id, "llmops.adapter_version", info.ref)
    return info


def dump_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str) + "\n"
