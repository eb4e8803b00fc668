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

Nothing here prints: what a person should see (the job summary, a resume, base-model build and
training progress) goes to the :class:`~llmops.events.Reporter` the caller passes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import Timeout

from llmops.config.workspace import Workspace
from llmops.errors import ConfigError, FinetuneError, Problem, TrainingInterrupted, ValidationFailed
from llmops.events import SILENT, Reporter, Task
from llmops.finetune.dataset import Example, build_examples, check_tokenizer
from llmops.finetune.init_adapter import InitAdapter, resolve_init_adapter
from llmops.finetune.job import FinetuneJob, file_sha256, job_name, load_job
from llmops.finetune.lineage import dump_json, lineage_tags, log_rows, start_run, store_splits, system_info
from llmops.finetune.recipe import RecipeConfig, TrainResult, train
from llmops.finetune.rows import RowFile, read_rows
from llmops.finetune.state import JobState
from llmops.finetune.validation import DataReport, check_data
from llmops.gitinfo import file_info
from llmops.models.base import BaseModel, resolve_base
from llmops.registry import Registry, connect, tags
from llmops.registry.adapters import AdapterVersionInfo
from llmops.registry.prompts import PromptVersionInfo
from llmops.registry.runs import TrackedRun


@dataclass(frozen=True)
class RunOptions:
    resume: bool = False
    allow_warnings: bool = False
    max_steps: int | None = None
    base_model: str | None = None  # overrides the job's base_model (e.g. a local copy on a cluster)
    init_adapter: str | None = None  # overrides the job's init_adapter (an exact NAME/VERSION to continue)


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


def _without(examples: list[Example], lines: set[int]) -> list[Example]:
    return [e for e in examples if e.line not in lines]


def prepare(
    ws: Workspace, job_path: Path, options: RunOptions, registry: Registry, reporter: Reporter = SILENT
) -> PreparedJob:
    """Every check, cheapest first; raises before any training work when an input is unusable."""
    from transformers import AutoTokenizer

    shown = ws.shown(job_path)
    job = load_job(job_path, display=shown)
    if options.init_adapter is not None:
        job = job.model_copy(update={"init_adapter": options.init_adapter})
    paths = job.data_paths(ws.root)
    train_rows = read_rows(paths["train"], display=ws.shown(paths["train"]))
    eval_rows = read_rows(paths["eval"], display=ws.shown(paths["eval"])) if "eval" in paths else None
    kinds = train_rows.kinds | (eval_rows.kinds if eval_rows else set())
    if "prompt" in kinds and not job.prompt:
        raise ConfigError.at(shown, "the data holds prompt rows: set `prompt:` to a prompt version", field="prompt")

    registry.adapters.check_name_free(job.adapter)  # before any training work
    # NotFoundError names the reference
    prompt = registry.prompts.get(job.prompt) if job.prompt else None

    base = _resolve_base_with_progress(ws, options.base_model or job.base_model, reporter)
    init_adapter = resolve_init_adapter(registry.adapters, job, shown, base)
    tokenizer = AutoTokenizer.from_pretrained(base.path)
    check_tokenizer(tokenizer, base.ref)

    spec, version = (prompt.spec, prompt.version) if prompt else (None, None)
    train_examples = build_examples(train_rows, tokenizer, spec, version)
    eval_examples = build_examples(eval_rows, tokenizer, spec, version) if eval_rows else []
    test_path = job.test_path(ws.root)
    test_rows = read_rows(test_path, display=ws.shown(test_path)) if test_path else None
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


def _resolve_base_with_progress(ws: Workspace, ref: str, reporter: Reporter) -> BaseModel:
    """The base model; building the reference model (first use only) shows as a task of ``reporter``."""
    if ref != "reference":
        return resolve_base(ws, ref)
    task: Task | None = None

    def progress(done: float, total: float) -> None:
        nonlocal task
        if task is None:  # a cached model reports no progress: no task at all
            task = reporter.task("base model (reference, cached after the first build)", total, completed=done)
        task.update(done, total=total)

    try:
        return resolve_base(ws, ref, progress=progress)
    finally:
        if task is not None:
            task.close()


def _recipe_config(prepared: PreparedJob, output_dir: Path, max_steps: int | None) -> RecipeConfig:
    """The job's settings, with the run's step budget (``--max-steps`` or a resumed run's) replacing epochs."""
    training = prepared.job.training
    if max_steps:
        training = training.model_copy(update={"max_steps": max_steps, "epochs": None})
    return RecipeConfig(
        base_model_path=prepared.base.path,
        base_model_label=prepared.base.ref,
        output_dir=output_dir,
        lora=prepared.job.lora,
        training=training,
        checkpoint_info={"job_spec_sha256": prepared.job_sha256},
        init_adapter_dir=prepared.init_adapter.path if prepared.init_adapter else None,
    )


def _git_commit(path: Path) -> tuple[str, bool]:
    """The commit of the job file (``LLMOPS_GIT_COMMIT`` in an uploaded copy without ``.git``), and dirty."""
    git = file_info(path)
    if git.commit:
        return git.commit, git.dirty
    return os.environ.get("LLMOPS_GIT_COMMIT", ""), False


def _start_run(registry: Registry, prepared: PreparedJob, max_steps: int | None) -> TrackedRun:
    commit, dirty = _git_commit(prepared.path)
    # the data files go into the registry first: a failure to store them fails the job before any run exists
    splits = store_splits(registry.datasets, prepared.name, prepared.train_rows, prepared.eval_rows, prepared.report)
    values = {
        tags.JOB: prepared.name,
        tags.JOB_FILE: prepared.shown,
        tags.ADAPTER: prepared.job.adapter,
        tags.JOB_SPEC_SHA256: prepared.job_sha256,
        tags.GIT_COMMIT: commit,
        tags.GIT_DIRTY: str(dirty).lower(),
        tags.BASE_MODEL: prepared.base.ref,
        tags.BASE_MODEL_SHA256: prepared.base.sha256,
        tags.PROMPT_VERSION: prepared.prompt_version,
        tags.DATASET_FINGERPRINT: prepared.train_rows.fingerprint,
        tags.INIT_ADAPTER: prepared.init_adapter_ref,
    }
    run = start_run(registry.runs, prepared.name, values)
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
    log_rows(registry.datasets, run, splits)
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


def run_job(ws: Workspace, job_path: Path, options: RunOptions, reporter: Reporter = SILENT) -> RunOutcome:
    """Check, train and register one job; see the module docstring. Progress goes to ``reporter``."""
    main = _is_main_process()
    registry = connect(ws)
    if not main:
        reporter = SILENT  # rank 0 of a torchrun job speaks for all of them
    prepared = prepare(ws, job_path, options, registry, reporter)
    _describe(prepared, reporter)
    state = JobState(ws, prepared.name)
    if not main:  # other ranks of a torchrun job train alongside rank 0, which holds the lock and the state
        return _train_and_register(registry, prepared, state, options, reporter, main)
    try:
        with state.lock():
            return _train_and_register(registry, prepared, state, options, reporter, main)
    except Timeout as exc:
        raise FinetuneError(f"job {prepared.name} is already running in this workspace ({state.folder})") from exc


def _train_and_register(
    registry: Registry,
    prepared: PreparedJob,
    state: JobState,
    options: RunOptions,
    reporter: Reporter,
    main: bool,
) -> RunOutcome:
    max_steps = options.max_steps or prepared.job.training.max_steps
    checkpoint = None
    run: TrackedRun | None = None
    if options.resume:
        previous, checkpoint = state.resume_point(_current_hashes(prepared), prune_partial=main)
        max_steps = options.max_steps or previous.get("max_steps") or max_steps
        if main:
            run = registry.runs.reopen(str(previous["run_id"]))
            run.set_tags({tags.RESUMED_FROM_STEP: str(_step_of(checkpoint))})
        where = f"checkpoint {checkpoint.name}" if checkpoint else "the start (no complete checkpoint)"
        reporter.note(f"resuming run {previous['run_id']} from {where}")
    elif main:
        state.clear_checkpoints()
        run = _start_run(registry, prepared, max_steps)
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
            reporter=reporter if main else SILENT,
        )
    except KeyboardInterrupt as exc:
        _close(run, state, "KILLED", "interrupted")
        raise TrainingInterrupted(f"job {prepared.name}: interrupted; no checkpoint saved for this step") from exc
    except BaseException:
        _close(run, state, "FAILED", "failed")
        raise
    if result.stopped_by is not None:
        if run is not None:
            run.set_tags({tags.STOPPED_AT_STEP: str(result.steps), tags.STOPPED_BY: result.stopped_by})
        _close(run, state, "KILLED", "interrupted")
        raise TrainingInterrupted(
            f"job {prepared.name}: {result.stopped_by} at step {result.steps}/{result.max_steps}; checkpoint "
            f"saved. Continue with: llmops finetune run {prepared.shown} --resume"
        )
    if not main or run is None or result.adapter_dir is None:
        return RunOutcome(prepared.name, None, None, result, prepared.report)
    return _register(registry, prepared, state, run, result)


def _step_of(checkpoint: Path | None) -> int:
    return int(checkpoint.name.rsplit("-", 1)[-1]) if checkpoint else 0


def _close(run: TrackedRun | None, state: JobState, status: str, state_status: str) -> None:
    if run is None:
        return
    run.finish(status)
    previous = state.load() or {}
    state.save({**previous, "status": state_status})


def _register(
    registry: Registry, prepared: PreparedJob, state: JobState, run: TrackedRun, result: TrainResult
) -> RunOutcome:
    assert result.adapter_dir is not None
    run.log_metrics(result.steps, {"train_tokens": result.tokens, "train_seconds": result.seconds})
    run.set_tags({tags.BATCHING: result.batching, tags.PRECISION: result.precision})
    lineage = lineage_tags(
        base_model=prepared.base.ref,
        base_model_sha256=prepared.base.sha256,
        dataset_fingerprint=prepared.train_rows.fingerprint,
        prompt_version=prepared.prompt_version,
        git_commit=_git_commit(prepared.path)[0],
        job_spec_sha256=prepared.job_sha256,
        run_id=run.run_id,
        init_adapter=prepared.init_adapter_ref,
    )
    try:
        # also tags the run with the new version (llmops.adapter_version)
        info = registry.adapters.register(prepared.job.adapter, result.adapter_dir, run.run_id, lineage)
    except BaseException:
        _close(run, state, "FAILED", "failed")  # the final checkpoint stays: --resume registers it
        raise
    run.finish("FINISHED")
    state.save({**_current_hashes(prepared), "run_id": run.run_id, "status": "registered", "adapter": info.ref})
    state.clear_checkpoints()
    return RunOutcome(prepared.name, run.run_id, info, result, prepared.report)


def _describe(prepared: PreparedJob, reporter: Reporter) -> None:
    r = prepared.report
    counts = ", ".join(f"{k} {v}" for k, v in r.counts().items() if v) or "none"
    continues = f"continues adapter {prepared.init_adapter.ref}, " if prepared.init_adapter else ""
    evals = f", eval {len(prepared.eval_examples)} rows" if prepared.eval_rows else ""
    reporter.note(
        f"job {prepared.name}: base {prepared.base.ref} (sha256 {prepared.base.sha256[:12]}), "
        f"prompt {prepared.prompt_version or '-'}, {continues}train {len(prepared.train_examples)} rows{evals}; "
        f"data fingerprint {prepared.train_rows.fingerprint[:12]}; warnings: {counts}"
    )
