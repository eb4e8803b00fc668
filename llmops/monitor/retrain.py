"""``llmops retrain ROUTE``: a candidate adapter from production traffic and feedback; registered, never promoted.

Steps, each reported to the :class:`~llmops.events.Reporter`:

1. **What serves**: the release of the route's first (stable) target now (its stage pointer, else the
   target's own references) and its adapter version; the fine-tune job is ``--job`` or the one file in
   ``finetune/`` whose ``adapter:`` names that adapter.
2. **Dataset** (:mod:`llmops.monitor.retrain_data`): captured requests of the route since the release was
   set, joined with feedback, validated, merged with the job's training rows, stored as
   ``<home>/datasets/<fingerprint>/train.jsonl``, stored in the registry (``registry.datasets``, kind
   ``retrain``: the fine-tune then finds it stored under the same fingerprint) and logged to a retrain run
   (experiment :data:`EXPERIMENT`) as its dataset input, with its source counts. Too few usable rows:
   :class:`~llmops.errors.NotEnoughData`.
3. **Train**: the job with ``train`` = that file and ``init_adapter`` = the serving adapter version, here
   or on a Ray cluster. The new version carries the production-data lineage (``llmops.retrain.*`` tags).
   Nothing sets an alias and nothing is promoted.
4. **Evaluate** the candidate (new adapter + the serving prompt) on the route's required suites; a failing
   suite is reported, the candidate stays registered.
5. **Trigger link**: with ``trigger``, the monitor's trigger run is tagged with the dataset, the runs, the
   candidate and the eval records and verdicts.

The derived job file is written beside the dataset; for a cluster both go under
``finetune/retrain/<fingerprint12>/`` in the workspace, since the workspace is what a Ray job receives.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from llmops.config.monitor import MonitorFile
from llmops.config.workspace import Workspace
from llmops.errors import ConfigError, LaunchError, LlmopsError, NotFoundError
from llmops.evals.files import load_suite
from llmops.evals.service import RunOptions as EvalOptions
from llmops.evals.service import run_eval
from llmops.events import SILENT, Reporter
from llmops.finetune.job import FinetuneJob, file_sha256, job_name, load_job
from llmops.finetune.launch import LaunchRequest, LocalLauncher
from llmops.finetune.rows import Row, read_rows
from llmops.finetune.runner import RunOptions
from llmops.monitor.retrain_data import RetrainDataset, build_dataset, held_out_inputs
from llmops.monitor.serving import route_spec, target_resolved
from llmops.registry import Registry, connect, tags
from llmops.registry.adapters import AdapterVersionInfo
from llmops.registry.resolved import ResolvedRelease

EXPERIMENT = "llmops-retrain"
#: how long a cluster job may take before the retrain gives up following it
CLUSTER_TIMEOUT_S = 6 * 3600.0


@dataclass(frozen=True)
class EvalVerdict:
    """One required suite's outcome for the candidate (``verdict``: pass, fail or error)."""

    suite: str
    file: str
    verdict: str
    record_id: str = ""
    detail: str = ""


@dataclass(frozen=True)
class RetrainResult:
    route: str
    serving: str  # the serving release's label
    job: str  # the job file the derived job came from
    dataset: str  # path of the merged train.jsonl
    fingerprint: str
    counts: dict[str, Any]
    since: float
    until: float
    retrain_run_id: str
    finetune_run_id: str
    candidate: str  # NAME/VERSION
    init_adapter: str
    prompt: str | None = None  # the serving prompt version the candidate was evaluated with
    trigger: str | None = None
    cluster_job: str | None = None
    evals: list[EvalVerdict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when the candidate passed every required suite (and at least one ran)."""
        return bool(self.evals) and all(e.verdict == "pass" for e in self.evals)

    @property
    def errored(self) -> bool:
        return any(e.verdict == "error" for e in self.evals)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed, "promoted": False}


@dataclass(frozen=True)
class _Source:
    """What the route serves now and the job that trained its adapter."""

    serving: ResolvedRelease
    adapter: AdapterVersionInfo
    job_path: Path
    job: FinetuneJob
    set_at: float


def _serving(registry: Registry, route: str) -> tuple[ResolvedRelease, float | None]:
    """The resolved release of the route's first target and when its stage pointer was last moved (None: unknown)."""
    target = route_spec(registry.ws, route, needed_by="llmops retrain").targets[0]
    resolved = target_resolved(registry, route, target)
    set_at = None
    if target.release:
        moves = registry.pointers.history(route, target.release, limit=50)
        if moves:
            set_at = moves[0].record.timestamp_ms / 1000
    return resolved, set_at


def _find_job(ws: Workspace, adapter: AdapterVersionInfo) -> Path:
    """The job file under ``finetune/`` that registers ``adapter``'s name (the one with its spec sha256 first)."""
    found: list[Path] = []
    for path in sorted((ws.asset_dir("finetune")).glob("*.y*ml")):
        try:
            job = load_job(path, display=ws.shown(path))
        except LlmopsError:
            continue
        if job.adapter == adapter.name:
            found.append(path)
    if not found:
        raise ConfigError.at(
            "finetune/",
            f"no job file registers adapter {adapter.name} (the serving adapter {adapter.ref}): pass --job PATH",
            field="adapter",
        )
    exact = [p for p in found if file_sha256(p) == adapter.tags.get(tags.JOB_SPEC_SHA256)]
    if len(exact) == 1 or len(found) == 1:
        return (exact or found)[0]
    names = ", ".join(ws.shown(p) for p in found)
    raise ConfigError.at("finetune/", f"several jobs register adapter {adapter.name} ({names}): pass --job PATH")


def _source(registry: Registry, route: str, job: Path | None) -> _Source:
    serving, set_at = _serving(registry, route)
    if serving.adapter is None:
        raise LlmopsError(
            f"route {route} serves {serving.label()}: no adapter to continue training; promote an adapter first"
        )
    ws = registry.ws
    path = (job if job.is_absolute() else ws.root / job) if job is not None else _find_job(ws, serving.adapter)
    spec = load_job(path, display=ws.shown(path))
    return _Source(serving, serving.adapter, path, spec, set_at or serving.adapter.created_ms / 1000)


def _route_suites(ws: Workspace, route: str) -> list[tuple[Path, bool, list[dict[str, Any]]]]:
    """(suite file, required, cases as dicts) of every suite in ``evals/`` that targets ``route``."""
    out = []
    for path in sorted(ws.asset_dir("evals").rglob("*.y*ml")):
        suite, cases, _ = load_suite(path)
        if suite.target.route == route:
            out.append((path, suite.required, [c.model_dump(mode="json") for c in cases]))
    return out


def _held_out_rows(ws: Workspace, job: FinetuneJob) -> list[Row]:
    paths = [p for p in (job.data_paths(ws.root).get("eval"), job.test_path(ws.root)) if p is not None]
    return [row for p in paths for row in read_rows(p, display=ws.shown(p)).rows]


def _log_paths(ws: Workspace, spec: MonitorFile | None) -> tuple[str, str]:
    fields = MonitorFile.model_fields
    request_log = spec.request_log if spec else str(fields["request_log"].default)
    feedback_log = spec.feedback_log if spec else str(fields["feedback_log"].default)

    def under_home(value: str) -> str:
        return value if Path(value).is_absolute() else str(ws.home / value)

    return under_home(request_log), under_home(feedback_log)


def _write_job(ws: Workspace, src: _Source, data: RetrainDataset, cluster: bool) -> tuple[Path, Path]:
    """(the stored dataset, the derived job file): the route's job with the new ``train`` and ``init_adapter``."""
    raw = yaml.safe_load(src.job_path.read_text(encoding="utf-8")) or {}
    stored = data.write(ws.home / "datasets" / data.fingerprint)
    train = stored
    if cluster:  # a Ray job receives the workspace (not the llmops home): the file travels inside it
        train = data.write(ws.root / "finetune" / "retrain" / data.fingerprint[:12])
    raw["train"] = train.relative_to(ws.root).as_posix() if cluster else str(train)
    raw["init_adapter"] = src.adapter.ref
    raw["description"] = (
        f"retrain of {job_name(src.job_path)} from production traffic (dataset {data.fingerprint[:12]})"
    )
    path = train.parent / f"{job_name(src.job_path)}-retrain.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    load_job(path, display=ws.shown(path))  # the derived job is schema-checked before anything starts
    return stored, path


def _train(
    ws: Workspace, registry: Registry, job_path: Path, job: FinetuneJob, options: RunOptions,
    cluster: str | None, fingerprint: str, reporter: Reporter,
) -> tuple[AdapterVersionInfo, str, str | None]:  # fmt: skip
    """(the registered version, its fine-tune run id, the cluster job id or None)."""
    if cluster is None:
        launcher = LocalLauncher(ws, reporter)
        launcher.submit(LaunchRequest(ws.root, ws.shown(job_path), options))
        outcome = launcher.outcome
        if outcome is None or outcome.adapter is None or outcome.run_id is None:
            raise LlmopsError(f"the retrain job {job_path.name} registered no adapter")
        return outcome.adapter, outcome.run_id, None
    from llmops.finetune.ray_launcher import RayLauncher, build_request

    ray = RayLauncher(cluster)
    job_id = ray.submit(build_request(ws, job_path, job, options, address=cluster))
    with reporter.waiting(f"training on {cluster} (job {job_id})"):
        state = ray.wait(job_id, timeout_s=CLUSTER_TIMEOUT_S)
    if state != "SUCCEEDED":
        raise LaunchError(f"retrain job {job_id} ended {state} on {cluster}: {ray.logs(job_id)[-2000:]}")
    found = [v for v in registry.adapters.versions(job.adapter) if v.tags.get(tags.DATASET_FINGERPRINT) == fingerprint]
    if not found:
        raise NotFoundError(f"job {job_id} succeeded but no version of {job.adapter} carries dataset {fingerprint}")
    return found[-1], found[-1].run_id or "", job_id


def _evaluate(
    ws: Workspace,
    suites: list[Path],
    candidate: AdapterVersionInfo,
    serving: ResolvedRelease,
    reporter: Reporter,
    endpoint: str | None = None,
) -> list[EvalVerdict]:
    out = []
    for path in suites:
        suite, _, _ = load_suite(path)
        options = EvalOptions(
            candidate=candidate.exact_ref,
            prompt=serving.prompt.exact_ref if serving.prompt else None,
            endpoint=endpoint,
            label=f"evaluating candidate {candidate.ref} on {suite.name}",
        )
        try:
            run = run_eval(ws, path, options, reporter=reporter)
        except LlmopsError as exc:
            reporter.note(f"suite {suite.name}: the eval could not run: {exc}")
            out.append(EvalVerdict(suite.name, ws.shown(path), "error", detail=str(exc)))
            continue
        verdict = "pass" if run.outcome.passed else "fail"
        failed = ", ".join(g.line() for g in run.outcome.gates if not g.passed)
        reporter.note(f"suite {suite.name}: {verdict}" + (f" (failed gates: {failed})" if failed else ""))
        out.append(EvalVerdict(suite.name, ws.shown(path), verdict, run.record_id, failed))
    return out


def retrain(
    ws: Workspace,
    route: str,
    *,
    spec: MonitorFile | None,
    job: Path | None = None,
    cluster: str | None = None,
    since: float | None = None,
    trigger: str | None = None,
    min_records: int = 50,
    max_steps: int | None = None,
    endpoint: str | None = None,
    reporter: Reporter = SILENT,
) -> RetrainResult:
    """Build the dataset, train a candidate, evaluate it, link the trigger (module docstring)."""
    registry = connect(ws)
    if trigger is not None and registry.runs.find(trigger) is None:
        raise NotFoundError(f"trigger run {trigger} not found in the registry")
    src = _source(registry, route, job)
    reporter.note(f"route {route} serves {src.serving.label()}; job {ws.shown(src.job_path)}")
    suites = _route_suites(ws, route)
    held_out = held_out_inputs(_held_out_rows(ws, src.job), [c for _, _, cases in suites for c in cases])
    train_path = src.job.data_paths(ws.root)["train"]
    request_log, feedback_log = _log_paths(ws, spec)
    start = src.set_at if since is None else since
    data = build_dataset(
        route=route,
        request_log=request_log,
        feedback_log=feedback_log,
        original=read_rows(train_path, display=ws.shown(train_path)),
        held_out=held_out,
        since=start,
        until=time.time(),
        min_records=min_records,
    )
    counts = data.counts.as_dict()
    reporter.note(
        f"dataset {data.fingerprint[:12]}: {counts['original_rows']} original + {counts['production_rows']} "
        f"production rows ({counts['corrections']} corrections, {counts['confirmed']} confirmed); dropped "
        + (", ".join(f"{k} {v}" for k, v in counts["dropped"].items() if v) or "none")
    )
    stored, job_path = _write_job(ws, src, data, cluster is not None)
    kept = registry.datasets.store(
        [stored], fingerprint=data.fingerprint, name=f"{route}-retrain", kind="retrain", rows=len(data.lines),
        source=ws.shown(stored), validation=counts,
    )  # fmt: skip
    window = f"{data.since:.3f}..{data.until:.3f}"
    lineage = {
        tags.RETRAIN_ROUTE: route,
        tags.RETRAIN_TRIGGER: trigger or "",
        tags.RETRAIN_DATASET: data.fingerprint,
        tags.RETRAIN_WINDOW: window,
        tags.RETRAIN_COUNTS: json.dumps(counts, sort_keys=True),
    }
    run = registry.runs.start(EXPERIMENT, f"{route}-retrain-{time.strftime('%Y%m%d-%H%M%S')}",
                              {tags.KIND: tags.KIND_RETRAIN, **lineage})  # fmt: skip
    lineage[tags.RETRAIN_RUN] = run.run_id
    try:
        run.log_params({"route": route, "job": ws.shown(src.job_path), "init_adapter": src.adapter.ref,
                        **{f"rows.{k}": v for k, v in counts.items() if not isinstance(v, dict)},
                        **{f"dropped.{k}": v for k, v in counts["dropped"].items()}})  # fmt: skip
        run.log_file(stored, "dataset")
        registry.datasets.log_input(run.run_id, kept, context="retrain", origin=stored)
        run.log_file(job_path, "job")
        run.log_text(
            json.dumps({"fingerprint": data.fingerprint, "window": window, **counts}, indent=2), "dataset/sources.json"
        )
        if trigger is not None:
            registry.runs.set_tags(trigger, {tags.RETRAIN_RUN: run.run_id, tags.RETRAIN_DATASET: data.fingerprint})
        options = RunOptions(max_steps=max_steps, allow_warnings=True)  # over-long rows are dropped, as the job would
        candidate, ft_run, cluster_job = _train(
            ws, registry, job_path, src.job, options, cluster, data.fingerprint, reporter
        )
        for key, value in lineage.items():
            registry.adapters.set_tag(candidate.exact_ref, key, value)
        registry.runs.set_tags(ft_run, {tags.RETRAIN_RUN: run.run_id, tags.RETRAIN_TRIGGER: trigger or ""})
        reporter.note(f"registered candidate {candidate.ref} (continues {src.adapter.ref}); no alias set")
        required = [p for p, req, _ in suites if req]
        if not required:
            reporter.note(f"no required eval suite targets route {route}: the candidate was not evaluated")
        verdicts = _evaluate(ws, required, candidate, src.serving, reporter, endpoint)
        links = {
            tags.RETRAIN_FINETUNE_RUN: ft_run,
            tags.RETRAIN_CANDIDATE: candidate.ref,
            tags.RETRAIN_EVAL_RECORDS: ",".join(v.record_id for v in verdicts if v.record_id),
            tags.RETRAIN_EVAL_VERDICTS: json.dumps({v.suite: v.verdict for v in verdicts}, sort_keys=True),
        }
        run.set_tags(links)
        if trigger is not None:
            registry.runs.set_tags(trigger, links)
    except BaseException:
        run.finish("FAILED")
        raise
    run.finish("FINISHED")
    return RetrainResult(
        route=route,
        serving=src.serving.label(),
        job=ws.shown(src.job_path),
        dataset=str(stored),
        fingerprint=data.fingerprint,
        counts=counts,
        since=data.since,
        until=data.until,
        retrain_run_id=run.run_id,
        finetune_run_id=ft_run,
        candidate=candidate.ref,
        init_adapter=src.adapter.ref,
        prompt=str(src.serving.prompt.exact_ref) if src.serving.prompt else None,
        trigger=trigger,
        cluster_job=cluster_job,
        evals=verdicts,
    )
