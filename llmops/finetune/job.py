"""The fine-tune job spec: ``finetune/NAME.yaml``, a reviewed file like a prompt spec.

Why a file and not CLI flags: the job is what the lineage points at. Its sha256 (of the file's bytes,
so ``sha256sum finetune/NAME.yaml`` reproduces it) tags the registered adapter version, and the file
itself is logged to the run, so anyone can see exactly which settings produced an adapter.

Example::

    base_model: reference                     # 'reference', a hub id, or a path (relative to the workspace)
    train: finetune/data/support-triage/train.jsonl
    eval: finetune/data/support-triage/eval.jsonl
    test: finetune/data/support-triage/test.jsonl   # held out: `llmops finetune score` reads it
    prompt: support-triage@production         # formats prompt rows; required when the data has them
    adapter: support-triage-lora              # registered model the new version is added to (not a prompt's name)
    # init_adapter: support-triage-lora/3     # optional: continue training that version instead of a fresh LoRA
    lora: {r: 16, alpha: 32, dropout: 0.0}
    training: {max_steps: 500, lr: 1.0e-3, batch_size: 4, max_seq_len: 256}
    resources: {gpus: 0}
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from llmops.config.base import StrictModel
from llmops.config.yamlio import check_model_file, line_of, load_model
from llmops.errors import ConfigError, LlmopsError, Problem
from llmops.names import NAME_PATTERN
from llmops.refs import AdapterRef, PromptRef

#: LoRA on every linear layer of a Llama-style block, by the names vLLM and PEFT both know.
LLAMA_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
Precision = Literal["auto", "fp32", "bf16"]


class LoraSettings(StrictModel):
    r: int = Field(16, ge=1, le=256, description="rank; serving engines cap it (vLLM: --max-lora-rank)")
    alpha: int = Field(32, ge=1, le=4096, description="scaling numerator: the update is scaled by alpha / r")
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = Field(
        default_factory=lambda: list(LLAMA_LINEAR), description="module names, or 'all-linear'"
    )

    @field_validator("target_modules")
    @classmethod
    def _non_empty(cls, v: list[str] | str) -> list[str] | str:
        if isinstance(v, list) and (not v or any(not m.strip() for m in v)):
            raise ValueError("list at least one module name, e.g. [q_proj, v_proj]")
        return v


class TrainingSettings(StrictModel):
    max_steps: int | None = Field(None, ge=1, le=10_000_000, description="optimizer steps; or set epochs")
    epochs: float | None = Field(None, gt=0, le=1000)
    lr: float = Field(1e-3, gt=0, le=1)
    batch_size: int = Field(16, ge=1, le=4096, description="examples per device per micro-batch")
    grad_accum: int = Field(1, ge=1, le=1024)
    max_seq_len: int = Field(512, ge=8, le=1_048_576, description="longer examples are refused (or dropped)")
    packing: bool = Field(True, description="padding-free batches where the model supports them")
    seed: int = Field(0, ge=0)
    precision: Precision = Field("auto", description="auto = bf16 on GPUs that support it, else fp32")
    gradient_checkpointing: bool = Field(False, description="recompute activations: less memory, ~1/3 more compute")
    cpu_threads: int | None = Field(
        None, ge=1, le=1024, description="torch threads on CPU; default: llmops.finetune.threads decides"
    )
    save_steps: int = Field(50, ge=1, description="checkpoint every N optimizer steps")
    eval_steps: int | None = Field(None, ge=1, description="evaluate every N steps (always at the end)")
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0, le=1)
    max_grad_norm: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _steps_or_epochs(self) -> TrainingSettings:
        if self.max_steps is not None and self.epochs is not None:
            raise ValueError("set max_steps or epochs, not both")
        return self


class ResourceSettings(StrictModel):
    gpus: int = Field(0, ge=0, le=1024, description="GPUs per node (Ray: entrypoint_num_gpus)")
    nodes: int = Field(1, ge=1, le=1, description="only single-node jobs for now (multi-GPU via torchrun)")
    cpus: float | None = Field(None, gt=0, description="CPUs the Ray entrypoint reserves (default: Ray's 0)")


class FinetuneJob(StrictModel):
    """Schema of ``finetune/NAME.yaml``."""

    base_model: str = Field("reference", min_length=1, description="'reference', a hub id, or a local path")
    train: str = Field(min_length=1, description="JSONL training data, relative to the workspace")
    eval: str | None = Field(None, min_length=1, description="JSONL eval data (loss every eval_steps and at the end)")
    test: str | None = Field(None, min_length=1, description="held-out JSONL, never trained on: `finetune score`")
    prompt: str | None = Field(None, description="prompt version formatting prompt rows: NAME@alias or NAME/3")
    adapter: str = Field(pattern=f"^{NAME_PATTERN}$", description="registered adapter name to add a version to")
    init_adapter: str | None = Field(
        None,
        description="continue training a registered adapter: NAME (latest version), NAME/3 or NAME@alias; "
        "its rank, alpha and target modules must equal `lora:`, its base model this job's",
    )
    lora: LoraSettings = LoraSettings()
    training: TrainingSettings = TrainingSettings()
    resources: ResourceSettings = ResourceSettings()
    description: str = ""

    @field_validator("prompt", "init_adapter")
    @classmethod
    def _version_ref(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None:
            grammar = PromptRef if info.field_name == "prompt" else AdapterRef
            try:
                grammar.parse(v)
            except LlmopsError as exc:
                raise ValueError(str(exc)) from exc
        return v

    def prompt_ref(self) -> PromptRef | None:
        return PromptRef.parse(self.prompt) if self.prompt else None

    def data_paths(self, root: Path) -> dict[str, Path]:
        """``{"train": path, "eval": path}`` resolved against the workspace root (eval only when set)."""
        out = {"train": _resolve(root, self.train)}
        if self.eval:
            out["eval"] = _resolve(root, self.eval)
        return out

    def test_path(self, root: Path) -> Path | None:
        return _resolve(root, self.test) if self.test else None

    def flat_params(self) -> dict[str, str]:
        """Every setting as ``section.field`` strings, for the run's params."""
        out: dict[str, str] = {}
        for key, value in self.model_dump(mode="json").items():
            if isinstance(value, dict):
                out.update({f"{key}.{k}": str(v) for k, v in value.items()})
            else:
                out[key] = str(value)
        return out


def _resolve(root: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else root / path


def job_name(path: Path) -> str:
    """A job is known by its file name without extension (``finetune/support-triage.yaml`` → ``support-triage``)."""
    return path.stem


def file_sha256(path: Path) -> str:
    """sha256 of the job file's bytes: what ``sha256sum`` prints, so the lineage tag is checkable."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def find_job_file(job: Path, root: Path) -> Path:
    """The job file a user named: as typed (relative to the current folder), else relative to the workspace
    ``root``; a :class:`~llmops.errors.ConfigError` naming it when neither exists."""
    path = job if job.is_absolute() else (Path.cwd() / job)
    if not path.is_file() and (root / job).is_file():
        path = root / job
    if not path.is_file():
        raise ConfigError.at(job, "job file not found")
    return path.resolve()


def load_job(path: Path, *, display: str | None = None) -> FinetuneJob:
    """Load and schema-check a job file; ConfigError/ValidationFailed name file, line and field."""
    return load_model(FinetuneJob, path, display=display)


def check_job_file(path: Path, root: Path, *, display: str | None = None) -> tuple[FinetuneJob | None, list[Problem]]:
    """The job (when valid) and *every* problem: schema errors, then data files that do not exist."""
    shown = display or str(path)
    job, problems, lines = check_model_file(FinetuneJob, path, display=shown)
    if job is None:
        return None, problems
    paths = job.data_paths(root)
    test = job.test_path(root)
    if test is not None:
        paths["test"] = test
    problems = [
        Problem(shown, f"data file not found: {p}", field=split, line=line_of(lines, (split,)))
        for split, p in paths.items()
        if not p.is_file()
    ]
    return job, problems
