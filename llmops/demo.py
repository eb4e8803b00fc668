"""``llmops demo``: the whole lifecycle on the embedded defaults, on real components, step by step.

1. build the reference base model (cached);  2. push the example prompts and promote them;
3. fine-tune the support-triage adapter and its skewed variant;  4. evaluate base, adapter and
skewed adapter on ``evals/support-triage.yaml`` — production starts as the base model (a forced,
audited promotion), the skewed adapter is refused;  5. start the vLLM engine and the gateway, send
traffic with session keys, show the split, stickiness and per-target metrics;  6. roll the good release
out on live traffic (canary 10% → 50% → 100%, judged against stable at each step, then promoted), and
roll out a bad "hot fix" prompt that the canary analysis aborts (:mod:`llmops.demo_rollout`);  7. watch
production: in-distribution traffic (monitor ok), drifted traffic and feedback
(monitor alerts; the trigger retrains a candidate, evaluated and never promoted); show the audit trail;
8. return a summary, stop what was started (unless ``hold``).

Every step is idempotent: a rerun reuses the model, prompt versions, adapters (same job file),
cached eval outputs and promotions that already happened. Logs go to ``.llmops/logs/``. The steps
print nothing: they report through a :class:`~llmops.events.Reporter`, and the CLI renders them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from llmops.config.workspace import Workspace
from llmops.demo_monitor import MonitorDemo, monitor_production
from llmops.demo_rollout import RolloutDemo, canary_requests, roll_out
from llmops.demo_trace import TracedAnswer, trace_answers
from llmops.demo_traffic import DemoGateway, send_traffic, start_gateway
from llmops.engine.local import PendingEngine, launched_engine
from llmops.errors import LlmopsError, PromotionRefused
from llmops.evals.service import RunOptions as EvalOptions
from llmops.evals.service import run_eval
from llmops.events import SILENT, Reporter
from llmops.finetune.init_adapter import lineage_ref
from llmops.finetune.job import file_sha256, load_job
from llmops.finetune.runner import RunOptions, run_job
from llmops.gitinfo import file_info
from llmops.models.base import workspace_reference
from llmops.promotion import check_promotable, promote, promote_prompt_alias, serving_routes
from llmops.prompts.files import discover, load_checked
from llmops.refs import AdapterRef, PromptRef
from llmops.registry import Registry, connect, tags
from llmops.registry.audit import AuditRecord, settled

ROUTE = "support-triage"
SUITE = Path("evals/support-triage.yaml")
JOBS = {"good": Path("finetune/support-triage.yaml"), "skewed": Path("finetune/support-triage-skewed.yaml")}


@dataclass
class DemoOptions:
    train_steps: int | None = None  # fewer steps for tests; None = the job files' own
    traffic: int = 200


@dataclass
class StepResult:
    name: str
    status: str  # "done", "skipped"
    detail: str
    seconds: float = 0.0


@dataclass
class DemoResult:
    """What the demo did: each step, each release's eval scores and verdict, where things run."""

    steps: list[StepResult] = field(default_factory=list)
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    verdicts: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    audit: list[AuditRecord] = field(default_factory=list)  # the route's recent moves, each once (settled)
    monitoring: MonitorDemo | None = None  # the monitoring step's runs and trigger
    rollouts: RolloutDemo | None = None  # the rollout step's two rollouts
    traces: list[TracedAnswer] = field(default_factory=list)  # a canary and a production answer, traced
    engine_url: str = ""
    gateway_url: str = ""
    tracking_uri: str = ""
    logs: Path | None = None
    seconds: float = 0.0


@dataclass
class DemoState:
    """What earlier steps produced, for later steps."""

    ws: Workspace
    registry: Registry
    reporter: Reporter
    options: DemoOptions
    stack: ExitStack
    result: DemoResult
    prompt: str = ""
    adapters: dict[str, str] = field(default_factory=dict)  # good/skewed -> NAME/VERSION
    engine: PendingEngine | None = None  # launched as soon as the base model is on disk
    engine_url: str = ""
    engine_key: str | None = field(default=None, repr=False)  # the engine's API key (fresh for the demo)
    gateway: DemoGateway | None = None


class DemoStepFailed(LlmopsError):
    """A demo step failed; the message names the step and the log to read."""


def _bootstrap(st: DemoState) -> StepResult:
    with st.reporter.waiting("preparing the reference model (the package's shipped build; other specs are built)…"):
        model = workspace_reference(st.ws)
        # vLLM's 60-90 s start overlaps registering and fine-tuning
        st.engine = st.stack.enter_context(launched_engine(str(model.path), st.ws.logs_dir / "demo-engine.log"))
        record = st.registry.models.record(model)
    status = "done" if record.created else "skipped"
    return StepResult("reference model", status, f"{record.name} v{record.version}, {model.params:,} params")


def _prompts(st: DemoState) -> StepResult:
    prompts = st.registry.prompts
    results = [prompts.push(load_checked(p), file_info(p)) for p in discover(st.ws.asset_dir("prompts"))]
    moved = []
    for r in results:
        # a prompt alias a route serves moves only with its release (the gated promotion below)
        if r.version is None or serving_routes(st.registry, r.name, "production"):
            continue
        if prompts.alias_version(r.name, "production") != r.version:
            promote_prompt_alias(st.ws, r.name, r.version, "production", reason="llmops demo")
            moved.append(r.name)
    latest = prompts.latest(ROUTE)
    if latest is None:
        raise DemoStepFailed(f"no prompt named {ROUTE} in {st.ws.asset_dir('prompts')}")
    st.prompt = latest.ref
    if st.registry.pointers.at_stage(ROUTE, "production") is None:
        # the route serves support-triage@production: it moves only with a release, through the gate; the
        # first release has no eval record yet, so it is forced (audited with its reason)
        promote(st.ws, ROUTE, adapter=None, prompt=st.prompt, stage="production", force=True,
                reason="initial release: the base model serves until an adapter passes its evals")  # fmt: skip
        st.result.notes.append("production started as the base model with the prompt (forced, audited)")
        moved.append(ROUTE)
    new = sum(r.action == "registered" for r in results)
    detail = f"{new} new version(s); " + ", ".join(f"{r.name} v{r.version}" for r in results) + " @production"
    return StepResult("push + promote prompts", "done" if new or moved else "skipped", detail)


def _finetune(st: DemoState) -> StepResult:
    adapters = st.registry.adapters
    trained = []
    steps = str(st.options.train_steps or "")
    for key, rel in JOBS.items():
        path = st.ws.root / rel
        job = load_job(path)
        digest = file_sha256(path)
        # the skewed job continues the good adapter of this demo (not a later candidate that retraining from
        # production registered under the same name): retrain it when that changed
        init = st.adapters.get("good") if job.init_adapter else None
        parent = lineage_ref(adapters.get(init)) if init else ""
        existing = [
            v for v in adapters.versions(job.adapter)
            if v.tags.get(tags.JOB_SPEC_SHA256) == digest and v.tags.get(tags.DEMO_STEPS, "") == steps
            and v.tags.get(tags.INIT_ADAPTER, "") == parent
        ]  # fmt: skip
        if existing:
            st.adapters[key] = existing[-1].ref
            continue
        outcome = run_job(st.ws, path, RunOptions(max_steps=st.options.train_steps, init_adapter=init), st.reporter)
        if outcome.adapter is None:
            raise DemoStepFailed(f"job {rel} registered no adapter")
        adapters.set_tag(outcome.adapter.ref, tags.DEMO_STEPS, steps)
        st.adapters[key] = outcome.adapter.ref
        trained.append(outcome.adapter.ref)
    detail = ", ".join(f"{k}: {v}" for k, v in st.adapters.items())
    return StepResult("fine-tune adapters", "done" if trained else "skipped", detail)


def _engine_ready(st: DemoState) -> None:
    if st.engine is None:
        raise DemoStepFailed("the vLLM engine was never launched")
    with st.reporter.waiting("waiting for the vLLM engine (70-90 s to start on 2 CPU cores)…"):
        ready = st.engine.wait()
        st.engine_url, st.engine_key = ready.url, ready.api_key
    st.result.engine_url = st.engine_url


def _eval(st: DemoState, label: str, candidate: str | None, *, gateway_target: str | None = None) -> None:
    """Score one release (an adapter ref, or None for the base model) on the suite."""
    gateway = st.gateway if gateway_target else None
    opts = EvalOptions(
        candidate=AdapterRef.parse(candidate) if candidate else None,
        base_model_only=candidate is None,
        prompt=PromptRef.parse(st.prompt),
        endpoint=gateway.url if gateway else st.engine_url,
        gateway_target=gateway_target,
        api_key=gateway.key if gateway else None,
        engine_api_key=None if gateway else st.engine_key,
        label=f"evaluating {label} ({candidate or 'base model'})",
    )
    run = run_eval(st.ws, st.ws.root / SUITE, opts, reporter=st.reporter)
    o = run.outcome
    m = o.candidate.metrics
    st.result.scores[label] = m
    st.result.verdicts[label] = "PASS" if o.passed else "FAIL"
    answers = len(o.candidate.cases) + (o.candidate.bias.variants if o.candidate.bias else 0)
    lines = [
        f"  {label}: {st.result.verdicts[label]}  exact_match {m.get('exact_match', float('nan')):.2f}"
        f"  bias_change_rate {m.get('bias_change_rate', float('nan')):.2f}"
        f"  latency_p95 {m.get('latency_p95_ms', float('nan')):.0f} ms"
        f"  ({answers} answers, {o.candidate.cached} from cache)"
    ]
    lines += [f"    {g.line()}" for g in o.gates if not g.passed]
    if o.candidate.errors:
        first = next((c["error"] for c in o.candidate.cases if c.get("error")), "(in the bias variants)")
        lines.append(f"    {o.candidate.errors} request(s) failed; the first: {first}")
    lines.append(f"    report: {run.report_dir / 'report.html'}")
    for line in lines:
        st.reporter.note(line)


def _evaluate(st: DemoState) -> StepResult:
    # one after another: scored together, vLLM on CPU batches them faster, but each one's latency then
    # measures the others' load too (p95 6.8 s vs 2-3 s alone on a fresh engine) and fails the latency gate
    for label, candidate in (("base", None), ("adapter", st.adapters["good"]), ("skewed", st.adapters["skewed"])):
        _eval(st, label, candidate)
    try:
        check_promotable(st.ws, ROUTE, adapter=st.adapters["skewed"], prompt=st.prompt)
        refused = "NOT refused (its evals passed)"
    except PromotionRefused as exc:
        refused = "refused"
        st.reporter.note(f"  promote skewed → canary: refused: {exc}")
    verdicts = ", ".join(f"{k} {v}" for k, v in st.result.verdicts.items())
    return StepResult("evaluate releases", "done", f"{verdicts}; skewed adapter promotion {refused}")


def _traffic(st: DemoState) -> StepResult:
    # the rollouts move the canary's weight (route state in the registry); the file starts it at 0
    st.gateway = st.stack.enter_context(start_gateway(st.ws, st.engine_url, canary_weight=0, engine_key=st.engine_key))
    st.result.gateway_url = st.gateway.url
    report = send_traffic(st.gateway, ROUTE, n=st.options.traffic)
    st.reporter.note(
        f"  split over {report.requests} session keys: " + ", ".join(f"{k} {v}" for k, v in report.split.items())
    )
    st.reporter.note(f"  stickiness: {report.sticky_repeats} repeated keys, {report.sticky_moves} changed target")
    for line in report.metrics_lines:
        st.reporter.note(f"  {line}")
    share = report.split.get("canary", 0) / max(1, report.requests)
    return StepResult(
        "serve + traffic", "done", f"canary share {share:.1%}, {report.errors} errors, p50 {report.p50_ms:.0f} ms"
    )


def _rollout(st: DemoState) -> StepResult:
    assert st.gateway is not None
    seen = roll_out(st.ws, st.registry, st.gateway, adapter=st.adapters["good"], prompt=st.prompt, reporter=st.reporter)
    st.result.rollouts = seen
    parts = []
    if seen.good is not None:
        if seen.good.status != "succeeded":
            raise DemoStepFailed(f"the good release's rollout {seen.good.status}: {seen.good.state.reason}")
        parts.append(f"{seen.good.state.label}: 10→50→100% → production")
    if seen.bad is not None:
        if seen.bad.status != "failed":
            raise DemoStepFailed(f"the hot fix's rollout {seen.bad.status}, not failed: {seen.bad.state.reason}")
        parts.append(f"hot fix aborted after {canary_requests(seen.bad)} canary requests ({seen.bad.state.reason})")
    status = "done" if parts else "skipped"
    return StepResult("roll out releases", status, "; ".join(parts) or "production already serves the release")


def _monitor(st: DemoState) -> StepResult:
    assert st.gateway is not None
    adapters = st.registry.adapters
    serving = adapters.get(st.adapters["good"])
    done = [
        v for v in adapters.versions(serving.name)
        if v.tags.get(tags.RETRAIN_ROUTE) == ROUTE and v.tags.get(tags.INIT_ADAPTER) == lineage_ref(serving)
    ]  # fmt: skip
    if done:  # a rerun: production already led to a retrained candidate
        return StepResult("monitor + retrain", "skipped", f"{done[-1].ref} was retrained from production traffic")
    seen = monitor_production(
        st.ws, st.gateway, ROUTE, engine_url=st.engine_url, engine_key=st.engine_key,
        train_steps=st.options.train_steps, reporter=st.reporter,
    )  # fmt: skip
    st.result.monitoring = seen
    for label, run in (("in-distribution", seen.calm), ("drifted", seen.drifted)):
        route = run.routes.get(ROUTE) if run else None
        if route is None:
            continue
        alerting = sorted({f"{r.signal}" for w in route.windows[-1:] for r in w.results if r.level == "alert"})
        st.reporter.note(
            f"  monitor after {label} traffic: {route.level}" + (f" ({', '.join(alerting)})" if alerting else "")
        )
    if seen.trigger is None:
        raise DemoStepFailed("the drifted traffic fired no trigger: see the report under .llmops/demo/monitor/")
    outcome = {0: "candidate passed its evals", 1: "candidate failed its evals", None: "still running"}.get(
        seen.retrain_exit, f"retrain failed (exit {seen.retrain_exit})"
    )
    if seen.retrain_exit not in (0, 1):
        logs = [a["log"] for a in seen.trigger.get("started", {}).values() if a.get("log")]
        raise DemoStepFailed(f"the trigger's retrain did not finish: {outcome}; log: {', '.join(logs) or 'none'}")
    candidate = _retrained(st, seen.trigger["run_id"])
    rule, trigger = seen.trigger["rule"], seen.trigger["run_id"][:8]
    detail = f"{rule} alert → trigger {trigger} → retrained {candidate}: {outcome}; not promoted"
    return StepResult("monitor + retrain", "done", detail)


def _retrained(st: DemoState, trigger: str) -> str:
    """The candidate adapter the trigger's retrain registered (its ref, from the trigger's tags)."""
    found = st.registry.triggers.get(trigger).tags.get(tags.RETRAIN_CANDIDATE, "")
    if not found:
        raise DemoStepFailed(f"trigger {trigger} names no retrained candidate")
    if st.registry.pointers.at_stage(ROUTE, "production") is None:
        raise DemoStepFailed("production lost its release")
    return found


def _audit(st: DemoState) -> StepResult:
    # release moves and rollout outcomes (the weights each step wrote are audited too: `llmops audit`)
    moves = [r for r in settled(st.registry.audit.records(ROUTE, limit=60)) if r.kind in ("release", "rollout")]
    st.result.audit = moves[:10]
    return StepResult("audit trail", "done", f"{len(st.result.audit)} recent record(s) for {ROUTE}")


def _trace(st: DemoState) -> StepResult:
    logs = st.ws.logs_dir
    traced = trace_answers(
        st.registry, st.ws.home / "demo" / "gateway.yaml", [logs / "demo-gateway-requests.jsonl"],
        [logs / "demo-feedback.jsonl"], st.adapters["good"], st.prompt,
    )  # fmt: skip
    st.result.traces = traced
    shown = ", ".join(
        f"{t.target} {t.request_id[:8]}… ({t.approvals} approvals, {t.datasets} datasets)" for t in traced
    )
    return StepResult("trace answers", "done", f"whole chain, no gaps: {shown}")


STEPS: tuple[Callable[[DemoState], StepResult], ...] = (_bootstrap, _prompts, _finetune)
SERVED_STEPS: tuple[Callable[[DemoState], StepResult], ...] = (
    _evaluate,
    _traffic,
    _rollout,
    _monitor,
    _audit,
    _trace,
)


def _run_step(step: Callable[[DemoState], StepResult], st: DemoState, on_step: Callable[[StepResult], None]) -> None:
    started = time.monotonic()
    try:
        result = step(st)
    except LlmopsError as exc:
        raise DemoStepFailed(f"demo step {step.__name__.strip('_')} failed: {exc}\n  logs: {st.ws.logs_dir}") from exc
    result.seconds = time.monotonic() - started
    st.result.steps.append(result)
    on_step(result)


def run_demo(
    ws: Workspace,
    options: DemoOptions | None = None,
    *,
    reporter: Reporter = SILENT,
    on_step: Callable[[StepResult], None] = lambda _: None,
    hold: Callable[[DemoResult], None] | None = None,
) -> DemoResult:
    """Run every step; ``on_step`` sees each result as it completes; ``hold`` runs while engine and gateway serve."""
    options = options or DemoOptions()
    started = time.monotonic()
    result = DemoResult(tracking_uri=ws.tracking_uri, logs=ws.logs_dir)
    with ExitStack() as stack:
        st = DemoState(ws, connect(ws), reporter, options, stack, result)
        for step in STEPS:
            _run_step(step, st, on_step)
        _engine_ready(st)
        for step in SERVED_STEPS:
            _run_step(step, st, on_step)
        result.seconds = time.monotonic() - started
        if hold is not None:
            hold(result)
    return result
