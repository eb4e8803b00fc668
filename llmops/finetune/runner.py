"""Run one fine-tune job here: every check first, then one MLflow run, training, a registered adapter.

Order matters. Everything that can be wrong with the inputs is found before the first optimizer step:
the job file's schema, malformed data lines, the prompt version (asked of the registry), the base
model (a missing one fails at once), then the data checks (:mod:`llmops.finetune.validation`), refused
unless ``allow_warnings``. Only then is a run created.

Crash safety: the job's folder ``<home>/finetune/NAME/`` holds its checkpoints and ``state.json``
(run id and the hashes the run was started with). A job killed at any point registers nothing;
``resume=True`` checks that the job file, data, base model and prompt version are unchanged, reopens
the same MLflow run and continues from the latest *complete* checkpoint. A file lock keeps two
processes from training the same job of one workspace at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import Timeout
from rich.console import Console

from llmops.adapters.registry import AdapterRegistry
from llmops.config.workspace import Workspace
from llmops.errors import ConfigError, FinetuneError, Problem, TrainingInterrupted, ValidationFailed
from llmops.finetune.base_model import BaseModel, resolve_base
from llmops.finetune.dataset import Example, build_examples, check_tokenizer
from llmops.finetune.init_adapter import InitAdapter, resolve_init_adapter
from llmops.finetune.job import FinetuneJob, file_sha256, job_name, load_job
from llmops.finetune.lineage import (
    FinetuneRun,
    dump_json,
    lineage_tags,
    register_adapter,
    system_info,
)
from llmops.finetune.recipe import RecipeConfig, TrainResult, train
from llmops.finetune.rows import RowFile, read_rows
from llmops.finetune.state import JobState
from llmops.finetune.validation import DataReport, check_data
from llmops.gitinfo import file_info
from llmops.registry.tracking import connect

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from llmops.adapters.registry import AdapterVersionInfo
    from llmops.prompts.registry import PromptVersionInfo


@dataclass(frozen=True)
class RunOptions:
    resume: bool = False
    allow_warnings: bool = False
    max_steps: int | None = None
    base_model: str | None = None  # overrides the job's base_model (e.g. a local copy on a cluster)


@dataclass(frozen=True)
class PreparedJob:
    """A job whose inputs all passed their checks; nothing has been started yet."""

    name: str
    path: Path
    shown: str
    job: FinetuneJob
    job_sha256: str
    base: BaseModel
    prompt: PromptVersionInfo | None
    tokenizer: Any
    train_rows: RowFile
    eval_rows: RowFile | None
    train_examples: list[Example]
    eval_examples: list[Example]
    report: DataReport
    init_adapter: InitAdapter | None = None

    @property
    def prompt_version(self) -> str:
        return f"{self.prompt.name}/{self.prompt.version}" if self.prompt else ""

    @property
    def init_adapter_ref(self) -> str:
        """``NAME/VERSION@SHA256`` of the adapter training continues from ("" for a fresh LoRA)."""
        return self.init_adapter.lineage if self.init_adapter else ""


@dataclass(frozen=True)
class RunOutcome:
    job: str
    run_id: str | None
    adapter: AdapterVersionInfo | None
    result: TrainResult
    report: DataReport


def _is_main_process() -> bool:
    """Rank 0 of a torchrun job (or a plain single process) logs, saves and registers."""
    return os.environ.get("RANK", "0") == "0"


def _shown(ws: Workspace, path: Path) -> str:
    resolved = path.resolve()
    return resolved.relative_to(ws.root).as_posix() if resolved.is_relative_to(ws.root) else str(path)


def _without(examples: list[Example], lines: set[int]) -> list[Example]:
    return [e for e in examples if e.line not in lines]


def prepare(ws: Workspace, job_path: Path, options: RunOptions, client: MlflowClient, console: Console) -> PreparedJob:
    """Every check, cheapest first; raises before any training work when an input is unusable."""
    from transformers import AutoTokenizer

    shown = _shown(ws, job_path)
    job = load_job(job_path, display=shown)
    paths = job.data_paths(ws.root)
    train_rows = read_rows(paths["train"], display=_shown(ws, paths["train"]))
    eval_rows = read_rows(paths["eval"], display=_shown(ws, paths["eval"])) if "eval" in paths else None
    kinds = train_rows.kinds | (eval_rows.kinds if eval_rows else set())
    if "prompt" in kinds and not job.prompt:
        raise ConfigError.at(shown, "the data holds prompt rows: set `prompt:` to a prompt version", field="prompt")

    AdapterRegistry(client, ws).check_name_free(job.adapter)  # before any training work
    prompt = None
    if job.prompt:
        from llmops.prompts.registry import PromptRegistry

        prompt = PromptRegistry(client, ws).get(job.prompt)  # NotFoundError names the reference

    base = _resolve_base_with_progress(ws, options.base_model or job.base_model, console)
    init_adapter = resolve_init_adapter(ws, client, job, shown, base)
    tokenizer = AutoTokenizer.from_pretrained(base.path)
    check_tokenizer(tokenizer, base.ref)

    spec, version = (prompt.spec, prompt.version) if prompt else (None, None)
    train_examples = build_examples(train_rows, tokenizer, spec, version)
    eval_examples = build_examples(eval_rows, tokenizer, spec, version) if eval_rows else []
    test_path = job.test_path(ws.root)
    test_rows = read_rows(test_path, display=_shown(ws, test_path)) if test_path else None
    report = check_data(
        train_rows, train_examples, eval_rows, eval_examples, max_seq_len=job.training.max_seq_len, test_rows=test_rows
    )
    if report.warnings and not options.allow_warnings:
        hint = Problem(shown, f"{len(report.warnings)} data warning(s): fix the data, or pass --allow-warnings")
        raise ValidationFailed([f.problem for f in report.warnings] + [hint])
    train_split, eval_split = report.split("train"), report.split("eval")
    if train_split is not None:
        train_examples = _without(train_examples, train_split.dropped_lines())
    if eval_split is not None:
        eval_examples = _without(eval_examples, eval_split.dropped_lines())
    if not train_examples:
        raise FinetuneError(f"job {job_name(job_path)}: no trainable rows left in {train_rows.shown}")
    return PreparedJob(
        name=job_name(job_path),
        path=job_path,
        shown=shown,
        job=job,
        job_sha256=file_sha256(job_path),
        base=base,
        prompt=prompt,
        tokenizer=tokenizer,
        train_rows=train_rows,
        eval_rows=eval_rows,
        train_examples=train_examples,
        eval_examples=eval_examples,
        report=report,
        init_adapter=init_adapter,
    )


def _resolve_base_with_progress(ws: Workspace, ref: str, console: Console) -> BaseModel:
    if ref != "reference":
        return resolve_base(ws, ref)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("base model (reference, cached after the first build)"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("build", total=None)
        return resolve_base(ws, ref, progress=lambda done, total: bar.update(task, completed=done, total=total))


def _recipe_config(prepared: PreparedJob, output_dir: Path, max_steps: int | None) -> RecipeConfig:
    job = prepared.job
    t = job.training
    return RecipeConfig(
        base_model_path=prepared.base.path,
        base_model_label=prepared.base.ref,
        output_dir=output_dir,
        lora_r=job.lora.r,
        lora_alpha=job.lora.alpha,
        lora_dropout=job.lora.dropout,
        target_modules=job.lora.target_modules,
        max_steps=max_steps,
        epochs=None if max_steps else t.epochs,
        lr=t.lr,
        batch_size=t.batch_size,
        grad_accum=t.grad_accum,
        max_seq_len=t.max_seq_len,
        packing=t.packing,
        seed=t.seed,
        precision=t.precision,
        gradient_checkpointing=t.gradient_checkpointing,
        save_steps=t.save_steps,
        eval_steps=t.eval_steps,
        warmup_ratio=t.warmup_ratio,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        checkpoint_info={"job_spec_sha256": prepared.job_sha256},
        init_adapter_dir=prepared.init_adapter.path if prepared.init_adapter else None,
    )


def _start_run(client: MlflowClient, ws: Workspace, prepared: PreparedJob, max_steps: int | None) -> FinetuneRun:
    git = file_info(prepared.path)
    commit = git.commit or os.environ.get("LLMOPS_GIT_COMMIT", "")
    tags = {
        "llmops.job": prepared.name,
        "llmops.job_file": prepared.shown,
        "llmops.adapter": prepared.job.adapter,
        "llmops.job_spec_sha256": prepared.job_sha256,
        "llmops.git_commit": commit,
        "llmops.git_dirty": str(git.dirty if git.commit else False).lower(),
        "llmops.base_model": prepared.base.ref,
        "llmops.base_model_sha256": prepared.base.sha256,
        "llmops.prompt_version": prepared.prompt_version,
        "llmops.dataset_fingerprint": prepared.train_rows.fingerprint,
        "llmops.init_adapter": prepared.init_adapter_ref,
    }
    run = FinetuneRun.start(client, ws, prepared.name, tags)
    info = system_info()
    params: dict[str, Any] = {
        **prepared.job.flat_params(),
        "effective_max_steps": max_steps or "",
        "base_model_path": prepared.base.path,
        "data.train_rows": len(prepared.train_examples),
        "data.eval_rows": len(prepared.eval_examples),
        "data.eval_fingerprint": prepared.eval_rows.fingerprint if prepared.eval_rows else "",
        "data.warnings": len(prepared.report.warnings),
        **{f"system.{k}": v for k, v in info.items()},
    }
    run.log_params(params)
    run.log_file(prepared.path, "job")
    run.log_text(dump_json(info), "system.json")
    run.log_text(dump_json(_report_json(prepared.report)), "data-report.json")
    if prepared.report.warnings:
        run.log_text(prepared.report.as_text(), "data-warnings.txt")
    run.log_dataset(prepared.train_rows, name=f"{prepared.name}-train", context="training")
    if prepared.eval_rows is not None:
        run.log_dataset(prepared.eval_rows, name=f"{prepared.name}-eval", context="eval")
    return run


def _report_json(report: DataReport) -> dict[str, Any]:
    return {
        "counts": report.counts(),
        "splits": [
            {"split": s.split, "file": s.shown, "rows": s.rows, "fingerprint": s.fingerprint, "tokens": s.token_stats()}
            for s in report.splits
        ],
    }


def _current_hashes(prepared: PreparedJob) -> dict[str, str]:
    return {
        "job_spec_sha256": prepared.job_sha256,
        "dataset_fingerprint": prepared.train_rows.fingerprint,
        "base_model_sha256": prepared.base.sha256,
        "prompt_version": prepared.prompt_version,
        "init_adapter": prepared.init_adapter_ref,
    }


def run_job(ws: Workspace, job_path: Path, options: RunOptions, console: Console) -> RunOutcome:
    """Check, train and register one job; see the module docstring."""
    main = _is_main_process()
    client = connect(ws)
    prepared = prepare(ws, job_path, options, client, console if main else Console(quiet=True))
    _describe(prepared, console)
    state = JobState(ws, prepared.name)
    if not main:  # other ranks of a torchrun job train alongside rank 0, which holds the lock and the state
        return _train_and_register(ws, client, prepared, state, options, console, main)
    try:
        with state.lock():
            return _train_and_register(ws, client, prepared, state, options, console, main)
    except Timeout as exc:
        raise FinetuneError(f"job {prepared.name} is already running in this workspace ({state.folder})") from exc


def _train_and_register(
    ws: Workspace,
    client: MlflowClient,
    prepared: PreparedJob,
    state: JobState,
    options: RunOptions,
    console: Console,
    main: bool,
) -> RunOutcome:
    max_steps = options.max_steps or prepared.job.training.max_steps
    checkpoint = None
    run: FinetuneRun | None = None
    if options.resume:
        previous, checkpoint = state.resume_point(_current_hashes(prepared), prune_partial=main)
        max_steps = options.max_steps or previous.get("max_steps") or max_steps
        if main:
            run = FinetuneRun.reopen(client, str(previous["run_id"]))
            run.set_tags({"llmops.resumed_from_step": str(_step_of(checkpoint))})
        where = f"checkpoint {checkpoint.name}" if checkpoint else "the start (no complete checkpoint)"
        console.print(f"resuming run {previous['run_id']} from {where}", soft_wrap=True)
    elif main:
        state.clear_checkpoints()
        run = _start_run(client, ws, prepared, max_steps)
    if main and run is not None:
        state.save({**_current_hashes(prepared), "run_id": run.run_id, "max_steps": max_steps, "status": "training"})

    cfg = _recipe_config(prepared, state.checkpoints, max_steps)
    try:
        result = train(
            cfg,
            prepared.tokenizer,
            prepared.train_examples,
            prepared.eval_examples,
            resume_from=checkpoint,
            on_metrics=run.log_metrics if run else None,
            console=console if main else None,
        )
    except KeyboardInterrupt as exc:
        _close(run, state, "KILLED", "interrupted")
        raise TrainingInterrupted(f"job {prepared.name}: interrupted; no checkpoint saved for this step") from exc
    except BaseException:
        _close(run, state, "FAILED", "failed")
        raise
    if result.stopped_by is not None:
        if run is not None:
            run.set_tags({"llmops.stopped_at_step": str(result.steps), "llmops.stopped_by": result.stopped_by})
        _close(run, state, "KILLED", "interrupted")
        raise TrainingInterrupted(
            f"job {prepared.name}: {result.stopped_by} at step {result.steps}/{result.max_steps}; checkpoint "
            f"saved. Continue with: llmops finetune run {prepared.shown} --resume"
        )
    if not main or run is None or result.adapter_dir is None:
        return RunOutcome(prepared.name, None, None, result, prepared.report)
    return _register(ws, client, prepared, state, run, result)


def _step_of(checkpoint: Path | None) -> int:
    return int(checkpoint.name.rsplit("-", 1)[-1]) if checkpoint else 0


def _close(run: FinetuneRun | None, state: JobState, status: str, state_status: str) -> None:
    if run is None:
        return
    run.finish(status)
    previous = state.load() or {}
    state.save({**previous, "status": state_status})


def _register(
    ws: Workspace, client: MlflowClient, prepared: PreparedJob, state: JobState, run: FinetuneRun, result: TrainResult
) -> RunOutcome:
    assert result.adapter_dir is not None
    run.log_metrics(result.steps, {"train_tokens": result.tokens, "train_seconds": result.seconds})
    run.set_tags({"llmops.batching": result.batching, "llmops.precision": result.precision})
    git = file_info(prepared.path)
    lineage = lineage_tags(
        base_model=prepared.base.ref,
        base_model_sha256=prepared.base.sha256,
        dataset_fingerprint=prepared.train_rows.fingerprint,
        prompt_version=prepared.prompt_version,
        git_commit=git.commit or os.environ.get("LLMOPS_GIT_COMMIT", ""),
        job_spec_sha256=prepared.job_sha256,
        run_id=run.run_id,
        init_adapter=prepared.init_adapter_ref,
    )
    try:
        info = register_adapter(client, ws, prepared.job.adapter, result.adapter_dir, run.run_id, lineage)
    except BaseException:
        _close(run, state, "FAILED", "failed")  # the final checkpoint stays: --resume registers it
        raise
    run.finish("FINISHED")
    state.save({**_current_hashes(prepared), "run_id": run.run_id, "status": "registered", "adapter": info.ref})
    state.clear_checkpoints()
    return RunOutcome(prepared.name, run.run_id, info, result, prepared.report)


def _describe(prepared: PreparedJob, console: Console) -> None:
    r = prepared.report
    counts = ", ".join(f"{k} {v}" for k, v in r.counts().items() if v) or "none"
    console.print(
        f"job [bold]{prepared.name}[/bold]: base {prepared.base.ref} (sha256 {prepared.base.sha256[:12]}), "
        f"prompt {prepared.prompt_version or '-'}, "
        f"{f'continues adapter {prepared.init_adapter.ref}, ' if prepared.init_adapter else ''}train {len(prepared.train_examples)} rows"
        f"{f', eval {len(prepared.eval_examples)} rows' if prepared.eval_rows else ''}; "
        f"data fingerprint {prepared.train_rows.fingerprint[:12]}; warnings: {counts}",
        soft_wrap=True,
    )
