"""Lineage of a fine-tune: one tracked run per job, and the tags its adapter version carries.

The run (experiment :data:`EXPERIMENT`, started through ``registry.runs``) holds everything needed to
say where an adapter came from:

* params: every job setting (``lora.r``, ``training.lr``…), the resolved base model, the batching;
* tags: job name, job spec sha256, git commit, base model hash, prompt version, dataset fingerprint;
* artifacts: the job file itself (``job/NAME.yaml``), ``system.json``, the data report and, when
  warnings were allowed, ``data-warnings.txt``;
* dataset inputs: the train and eval files, stored byte for byte in the registry under their row
  fingerprint (``registry.datasets``, kinds ``training``/``eval``) before the run starts, then logged as
  ``mlflow.log_input`` does (our sha256 fingerprint as digest, context ``training``/``eval``, the source
  path, rows and the split's validation counts), see :func:`store_splits` and :func:`log_rows`;
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
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmops.finetune.rows import RowFile
from llmops.finetune.validation import KINDS, DataReport
from llmops.registry import tags
from llmops.registry.datasets import DatasetInfo, DatasetStore
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


@dataclass(frozen=True)
class StoredSplit:
    """A job's data file as stored in the registry, and the input context it is logged under."""

    context: str  # TRAINING_CONTEXT or "eval" (also the dataset's kind)
    name: str  # JOB-train, JOB-eval: the input's name (a dataset stored earlier may carry another)
    info: DatasetInfo
    rows: RowFile


def split_summary(report: DataReport, split: str) -> dict[str, int]:
    """The validation summary of one split: its rows, the warnings by kind, the rows training drops."""
    found = report.split(split)
    if found is None:
        return {}
    counts = Counter(f.kind for f in found.findings)
    return {"rows": found.rows, **{k: counts.get(k, 0) for k in KINDS}, "dropped": len(found.dropped_lines())}


def store_splits(
    datasets: DatasetStore, job: str, train: RowFile, eval_rows: RowFile | None, report: DataReport
) -> list[StoredSplit]:
    """Store the train (and eval) file in the registry under its row fingerprint; RegistryError when it fails."""
    out = []
    for context, split, rows in ((TRAINING_CONTEXT, "train", train), ("eval", "eval", eval_rows)):
        if rows is None:
            continue
        name = f"{job}-{split}"
        info = datasets.store(
            [rows.path], fingerprint=rows.fingerprint, name=name, kind=context,
            rows=len(rows.rows), source=rows.shown, validation=split_summary(report, split),
        )  # fmt: skip
        out.append(StoredSplit(context, name, info, rows))
    return out


def log_rows(datasets: DatasetStore, run: TrackedRun, splits: Sequence[StoredSplit]) -> None:
    """Log stored data files as inputs of ``run`` (what ``mlflow.log_input`` records), named after the job."""
    for split in splits:
        datasets.log_input(run.run_id, split.info, context=split.context, name=split.name, origin=split.rows.path)


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
