"""``llmops demo``: the whole lifecycle on the embedded defaults, on real components, step by step.

1. build the reference base model (cached);  2. push the example prompts and promote them;
3. fine-tune the support-triage adapter and its skewed variant;  4. evaluate base, adapter and
skewed adapter on ``evals/support-triage.yaml`` — production starts as the base model (a forced,
audited promotion), the skewed adapter is refused;  5. promote the good release to canary at 10%;
6. start the vLLM engine and the gateway, send traffic with session keys, show the split, stickiness
and per-target metrics;  7. run the suite through the gateway against the canary and promote it to
production; show the audit trail;  8. print a summary, stop what was started (unless ``serve``).

Every step is idempotent: a rerun reuses the model, prompt versions, adapters (same job file),
cached eval outputs and promotions that already happened. Logs go to ``.llmops/logs/``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from llmops.config.workspace import Workspace
from llmops.errors import LlmopsError, PromotionRefused

if TYPE_CHECKING:
    from llmops.evals.serving import PendingEngine

ROUTE = "support-triage"
SUITE = Path("evals/support-triage.yaml")
JOBS = {"good": Path("finetune/support-triage.yaml"), "skewed": Path("finetune/support-triage-skewed.yaml")}


@dataclass
class DemoOptions:
    serve: bool = False
    train_steps: int | None = None  # fewer steps for tests; None = the job files' own
    traffic: int = 200


@dataclass
class DemoState:
    """What earlier steps produced, for later steps and the summary."""

    ws: Workspace
    out: Console
    options: DemoOptions
    stack: ExitStack
    base_model: str = ""
    prompt: str = ""
    adapters: dict[str, str] = field(default_factory=dict)  # good/skewed -> NAME/VERSION
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    verdicts: dict[str, str] = field(default_factory=dict)
    engine_url: str = ""
    gateway_url: str = ""
    split: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    engine: PendingEngine | None = None  # launched as soon as the base model is on disk


@dataclass
class StepResult:
    name: str
    status: str  # "done", "skipped"
    detail: str
    seconds: float = 0.0


class DemoStepFailed(LlmopsError):
    """A demo step failed; the message names the step and the log to read."""


def _bootstrap(st: DemoState) -> StepResult:
    from llmops.models.catalog import record_base_model
    from llmops.models.reference import ensure_reference_model
    from llmops.models.spec import DEFAULT_STEPS
    from llmops.registry.tracking import connect

    ref = st.ws.settings.models.reference
    with st.out.status("building the reference model (cached after the first run)…"):
        model = ensure_reference_model(st.ws.models_dir, seed=ref.seed, steps=ref.steps or DEFAULT_STEPS)
        st.base_model = str(model.path)
        st.engine = _launch_engine(st)  # its 60-90 s start overlaps registering and fine-tuning
        record = record_base_model(connect(st.ws), st.ws, model)
    status = "done" if record.created else "skipped"
    return StepResult("reference model", status, f"{record.name} v{record.version}, {model.params:,} params")


def _prompts(st: DemoState) -> StepResult:
    from llmops.gitinfo import file_info
    from llmops.prompts.api import promote, registry
    from llmops.prompts.files import discover, load_checked

    reg = registry(st.ws)
    results = [reg.push(load_checked(p), file_info(p)) for p in discover(st.ws.asset_dir("prompts"))]
    moved = []
    for r in results:
        if r.version is not None and reg.alias_version(r.name, "production") != r.version:
            promote(r.name, r.version, "production", reason="llmops demo", ws=st.ws)
            moved.append(r.name)
    latest = reg.latest(ROUTE)
    assert latest is not None
    st.prompt = f"{ROUTE}/{latest.version}"
    new = sum(r.action == "registered" for r in results)
    detail = f"{new} new version(s); " + ", ".join(f"{r.name} v{r.version}" for r in results) + " @production"
    return StepResult("push + promote prompts", "done" if new or moved else "skipped", detail)


def _finetune(st: DemoState) -> StepResult:
    from llmops.adapters.registry import AdapterRegistry
    from llmops.finetune.init_adapter import lineage_ref
    from llmops.finetune.job import file_sha256, load_job
    from llmops.finetune.runner import RunOptions, run_job
    from llmops.registry.tracking import connect

    adapters = AdapterRegistry(connect(st.ws), st.ws)
    trained = []
    for key, rel in JOBS.items():
        path = st.ws.root / rel
        job = load_job(path)
        digest = file_sha256(path)
        steps = str(st.options.train_steps or "")
        # the skewed job continues the good adapter: retrain it when that changed
        parent = lineage_ref(adapters.get(job.init_adapter)) if job.init_adapter else ""
        existing = [
            v for v in adapters.versions(job.adapter)
            if v.tags.get("llmops.job_spec_sha256") == digest and v.tags.get("llmops.demo_steps", "") == steps
            and v.tags.get("llmops.init_adapter", "") == parent
        ]  # fmt: skip
        if existing:
            st.adapters[key] = existing[-1].ref
            continue
        outcome = run_job(st.ws, path, RunOptions(max_steps=st.options.train_steps), st.out)
        assert outcome.adapter is not None
        adapters._client.set_model_version_tag(job.adapter, str(outcome.adapter.version), "llmops.demo_steps", steps)
        st.adapters[key] = outcome.adapter.ref
        trained.append(outcome.adapter.ref)
    detail = ", ".join(f"{k}: {v}" for k, v in st.adapters.items())
    return StepResult("fine-tune adapters", "done" if trained else "skipped", detail)


def _launch_engine(st: DemoState) -> PendingEngine:
    """Launch vLLM now, so its 70-90 s start overlaps the fine-tuning; :func:`_engine_ready` waits for it."""
    from llmops.evals.serving import launched_engine

    return st.stack.enter_context(launched_engine(st.ws, st.base_model, log_path=st.ws.logs_dir / "demo-engine.log"))


def _engine_ready(st: DemoState, pending: PendingEngine) -> str:
    with st.out.status("waiting for the vLLM engine (70-90 s to start on 2 CPU cores)…"):
        return pending.wait().url


def _eval(st: DemoState, label: str, candidate: str, *, endpoint: str, gateway_target: str | None = None) -> None:
    """Score one release (an adapter ref, or "none" for the base model) on the suite, with a progress bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from llmops.demo_traffic import DEMO_KEY_ENV
    from llmops.evals.service import RunOptions, run_eval

    key = os.environ.get(DEMO_KEY_ENV) if gateway_target else None  # the demo gateway's key (set by start_gateway)
    opts = RunOptions(
        candidate=candidate, prompt=st.prompt, endpoint=endpoint, gateway_target=gateway_target, api_key=key
    )
    with Progress(TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=st.out, transient=True) as bar:  # fmt: skip

        def progress(which: str, total: int) -> Callable[[int], None]:
            name = f"evaluating {label} ({candidate})" if which == "candidate" else f"scoring {which} for {label}"
            task = bar.add_task(name, total=total)
            return lambda n: bar.advance(task, n)

        result = run_eval(st.ws, st.ws.root / SUITE, opts, progress=progress)
    o = result.outcome
    st.scores[label] = o.candidate.metrics
    st.verdicts[label] = "PASS" if o.passed else "FAIL"
    failed = [g.line() for g in o.gates if not g.passed]
    answers = len(o.candidate.cases) + (o.candidate.bias.variants if o.candidate.bias else 0)
    st.out.print(f"  {label}: {st.verdicts[label]}  exact_match {o.candidate.metrics.get('exact_match', float('nan')):.2f}"
                 f"  bias_change_rate {o.candidate.metrics.get('bias_change_rate', float('nan')):.2f}"
                 f"  latency_p95 {o.candidate.metrics.get('latency_p95_ms', float('nan')):.0f} ms"
                 f"  ({answers} answers, {o.candidate.cached} from cache)"
                 + "".join(f"\n    {line}" for line in failed))  # fmt: skip
    if o.candidate.errors:
        first = next((c["error"] for c in o.candidate.cases if c.get("error")), "(in the bias variants)")
        st.out.print(f"    {o.candidate.errors} request(s) failed; the first: {first}", markup=False)
    st.out.print(f"    report: {result.report_dir / 'report.html'}", markup=False)


def _evaluate(st: DemoState) -> StepResult:
    from llmops.promotion import check_promotable, promote
    from llmops.registry.tracking import connect
    from llmops.release_store import ReleaseStore

    # one after another: scored together, vLLM on CPU batches them faster, but each one's latency then
    # measures the others' load too (p95 6.8 s vs 2-3 s alone on a fresh engine) and fails the latency gate
    for label, candidate in (("base", "none"), ("adapter", st.adapters["good"]), ("skewed", st.adapters["skewed"])):
        _eval(st, label, candidate, endpoint=st.engine_url)
    if ReleaseStore(connect(st.ws), st.ws).at_stage(ROUTE, "production") is None:
        promote(st.ws, ROUTE, adapter=None, prompt=st.prompt, stage="production", force=True,
                reason="initial release: the base model serves until an adapter passes its evals")  # fmt: skip
        st.notes.append("production started as the base model (forced, audited)")
    try:
        check_promotable(st.ws, ROUTE, adapter=st.adapters["skewed"], prompt=st.prompt)
        refused = "NOT refused (its evals passed)"
    except PromotionRefused as exc:
        refused = "refused"
        st.out.print(f"  promote skewed → canary: [red]refused[/red]: {exc}")
    verdicts = ", ".join(f"{k} {v}" for k, v in st.verdicts.items())
    return StepResult("evaluate releases", "done", f"{verdicts}; skewed adapter promotion {refused}")


def _canary(st: DemoState) -> StepResult:
    from llmops.promotion import promote

    record = promote(st.ws, ROUTE, adapter=st.adapters["good"], prompt=st.prompt, stage="canary", reason="llmops demo")
    status = "skipped" if record.outcome == "unchanged" else "done"
    return StepResult(
        "promote to canary (10%)",
        status,
        f"{st.adapters['good']} + {st.prompt}; evals {', '.join(record.eval_records)}",
    )


def _traffic(st: DemoState) -> StepResult:
    from llmops.demo_traffic import send_traffic, start_gateway

    st.gateway_url = st.stack.enter_context(start_gateway(st.ws, st.engine_url, canary_weight=10))
    report = send_traffic(st.gateway_url, ROUTE, n=st.options.traffic)
    st.split = report.split
    st.out.print(
        f"  split over {report.requests} session keys: " + ", ".join(f"{k} {v}" for k, v in report.split.items())
    )
    st.out.print(f"  stickiness: {report.sticky_repeats} repeated keys, {report.sticky_moves} changed target")
    for line in report.metrics_lines:
        st.out.print(f"  {line}", markup=False)
    share = report.split.get("canary", 0) / max(1, report.requests)
    return StepResult(
        "serve + traffic", "done", f"canary share {share:.1%}, {report.errors} errors, p50 {report.p50_ms:.0f} ms"
    )


def _production(st: DemoState) -> StepResult:
    from llmops.promotion import promote

    _eval(st, "canary via gateway", st.adapters["good"], endpoint=st.gateway_url, gateway_target="canary")
    if st.verdicts["canary via gateway"] != "PASS":
        raise DemoStepFailed(
            "the canary failed the suite through the gateway, so it stays at canary (see the gates and report "
            f"above, and {st.ws.logs_dir / 'demo-gateway.log'})"
        )
    record = promote(
        st.ws, ROUTE, adapter=st.adapters["good"], prompt=st.prompt, stage="production", reason="canary passed"
    )
    status = "skipped" if record.outcome == "unchanged" else "done"
    return StepResult("promote to production", status, f"{ROUTE}@production → release v{record.to_version}")


def _audit(st: DemoState) -> StepResult:
    from llmops.audit import AuditLog
    from llmops.registry.tracking import connect

    records = AuditLog(connect(st.ws), st.ws).records(ROUTE, limit=16)
    # a move writes "pending" before it acts, then its outcome, often in the same millisecond (so the
    # two may come in either order): show the outcome alone
    settled = {(r.kind, r.alias, r.from_version, r.to_version) for r in records if r.outcome != "pending"}
    records = [
        r for r in records if r.outcome != "pending" or (r.kind, r.alias, r.from_version, r.to_version) not in settled
    ][:8]
    for r in records:
        forced = " (forced)" if r.forced else ""
        st.out.print(
            f"  {r.actor:>18} {r.kind:<7} {r.alias:<10} v{r.from_version or '-'} → v{r.to_version}  {r.outcome}{forced}"
            f"  {r.detail}"
        )
    return StepResult("audit trail", "done", f"{len(records)} recent record(s) for {ROUTE}")


STEPS: tuple[Callable[[DemoState], StepResult], ...] = (_bootstrap, _prompts, _finetune)
SERVED_STEPS: tuple[Callable[[DemoState], StepResult], ...] = (_evaluate, _canary, _traffic, _production, _audit)


def _run_step(step: Callable[[DemoState], StepResult], st: DemoState, results: list[StepResult]) -> None:
    started = time.monotonic()
    try:
        result = step(st)
    except LlmopsError as exc:
        raise DemoStepFailed(f"demo step {step.__name__.strip('_')} failed: {exc}\n  logs: {st.ws.logs_dir}") from exc
    result.seconds = time.monotonic() - started
    colour = {"done": "green", "skipped": "dim"}.get(result.status, "yellow")
    st.out.print(f"[{colour}]{result.status:>8}[/{colour}]  {result.name}: {result.detail}  ({result.seconds:.0f} s)")
    results.append(result)


def run_demo(ws: Workspace, out: Console, options: DemoOptions | None = None) -> list[StepResult]:
    """Run every step; return their results (also printed, with a summary table)."""
    options = options or DemoOptions()
    results: list[StepResult] = []
    started = time.monotonic()
    with ExitStack() as stack:
        st = DemoState(ws, out, options, stack)
        for step in STEPS:
            _run_step(step, st, results)
        assert st.engine is not None
        st.engine_url = _engine_ready(st, st.engine)
        for step in SERVED_STEPS:
            _run_step(step, st, results)
        _summary(st, results, time.monotonic() - started)
        if options.serve:
            out.print(f"serving: gateway {st.gateway_url}/v1, engine {st.engine_url}; Ctrl-C stops both")
            _wait_forever()
    return results


def _wait_forever() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def _summary(st: DemoState, results: list[StepResult], seconds: float) -> None:
    table = Table("step", "status", "detail", "s", title="llmops demo")
    for r in results:
        table.add_row(r.name, r.status, r.detail, f"{r.seconds:.0f}")
    st.out.print(table)
    scores = Table(
        "release", "verdict", "exact_match", "json_valid", "bias_change_rate", "latency p95 ms", title="eval scores"
    )
    for label, metrics in st.scores.items():

        def f(key: str, fmt: str = ".2f", m: dict[str, Any] = metrics) -> str:
            v = m.get(key)
            return "-" if v is None else format(v, fmt)

        scores.add_row(
            label,
            st.verdicts[label],
            f("exact_match"),
            f("json_valid"),
            f("bias_change_rate"),
            f("latency_p95_ms", ".0f"),
        )
    st.out.print(scores)
    for note in st.notes:
        st.out.print(f"note: {note}")
    st.out.print(f"registry: {st.ws.tracking_uri}  (UI: llmops registry serve → http://127.0.0.1:5000)")
    st.out.print(f"gateway: {st.gateway_url or '-'}/v1   engine: {st.engine_url or '-'}   logs: {st.ws.logs_dir}")
    st.out.print(f"demo finished in {seconds:.0f} s")
