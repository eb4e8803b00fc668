"""Lineage of a fine-tune: one tracked run per job, and the tags its adapter version carries.

The run (experiment :data:`EXPERIMENT`, started through ``registry.runs``) holds everything needed to
say where an adapter came from:

* params: every job setting (``lora.r``, ``training.lr``…), the resolved base model, the batching;
* tags: job name, job spec sha256, git commit, base model hash, prompt version, dataset fingerprint;
* artifacts: the job file itself (``job/NAME.yaml``), ``system.json``, the data report and, when
  warnings were allowed, ``data-warnings.txt``;
* dataset inputs: the train and eval files, logged as ``mlflow.log_input`` does (our sha256
  fingerprint as digest, context ``training``/``eval``), see :func:`log_rows`;
* metrics per step: ``loss``, ``learning_rate``, ``grad_norm``, ``tokens_per_s``, ``eval_loss``,
  then ``final_eval_loss``.

What is finetune-specific lives here (the experiment name, :func:`system_info`, :func:`lineage_tags`);
the run itself is a :class:`~llmops.registry.runs.TrackedRun` of the registry façade.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import time
from collections.abc import Mapping
from typing import Any

from llmops.finetune.rows import RowFile
from llmops.registry import tags
from llmops.registry.runs import RunStore, TrackedRun

EXPERIMENT = "llmops-finetune"
#: the ``mlflow.data.context`` of a run's training data input (what readers of the lineage look for)
TRAINING_CONTEXT = "training"


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


def start_run(runs: RunStore, job: str, values: Mapping[str, str]) -> TrackedRun:
    """A new run of ``job`` in :data:`EXPERIMENT`, named ``JOB-YYYYmmdd-HHMMSS``, kind ``finetune``."""
    run_name = f"{job}-{time.strftime('%Y%m%d-%H%M%S')}"
    return runs.start(EXPERIMENT, run_name, {tags.KIND: tags.KIND_FINETUNE, **values})


def log_rows(run: TrackedRun, rows: RowFile, *, name: str, context: str) -> None:
    """Log a data file as a run input, with its fingerprint (what ``mlflow.log_input`` records)."""
    run.log_dataset(
        [r.canonical for r in rows.rows],
        source=rows.path,
        shown=rows.shown,
        fingerprint=rows.fingerprint,
        name=name,
        context=context,
    )


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
    """The :data:`~llmops.registry.tags.LINEAGE` tags of an adapter version, all present (``""`` when not applicable)."""
    values = {
        tags.BASE_MODEL: base_model,
        tags.BASE_MODEL_SHA256: base_model_sha256,
        tags.DATASET_FINGERPRINT: dataset_fingerprint,
        tags.PROMPT_VERSION: prompt_version,
        tags.GIT_COMMIT: git_commit,
        tags.JOB_SPEC_SHA256: job_spec_sha256,
        tags.RUN_ID: run_id,
        tags.INIT_ADAPTER: init_adapter,
    }
    assert set(values) == set(tags.LINEAGE), "lineage tags out of step with llmops.registry.tags.LINEAGE"
    return values


def dump_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str) + "\n"
