"""``llmops eval run``: resolve the candidate and production releases, serve, score, gate, record.

Order matters for the user: every check that needs no request (suite schema, case file, references,
a production baseline for relative gates) runs before the first request is sent. The case file is stored
in the registry then too (``registry.datasets``, kind ``eval-cases``; a failure stops the run) and is
logged as a dataset input of every eval record the run writes.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmops.config.gateway import GatewayFile, engine_of, load_gateway_file
from llmops.config.workspace import Workspace
from llmops.engine.keys import client_key
from llmops.engine.local import EngineEndpoint, attach, local_engine
from llmops.errors import ConfigError, LlmopsError, ServerError
from llmops.evals import bias as bias_mod
from llmops.evals.draft import DraftRelease, draft_release
from llmops.evals.files import load_suite
from llmops.evals.gates import evaluate
from llmops.evals.report import EvalOutcome, write_reports
from llmops.evals.responders import OpenAIResponder
from llmops.evals.runner import OutputCache
from llmops.evals.scoring import ReleaseScores, score_release
from llmops.evals.spec import EvalSuite, cases_path
from llmops.events import SILENT, Reporter
from llmops.models.base import locate_base
from llmops.refs import AdapterRef, PromptRef
from llmops.registry import Registry, connect
from llmops.registry.datasets import DatasetInfo, case_file_fingerprint
from llmops.registry.resolved import ResolvedRelease
from llmops.release import Release
from llmops.releases import configured_release

GATEWAY_FILE = "serving/gateway.yaml"


@dataclass(frozen=True)
class RunOptions:
    candidate: AdapterRef | None = None  # adapter overriding the target's
    prompt: PromptRef | None = None  # prompt overriding the target's
    prompt_file: Path | None = None  # a draft prompt file overriding the target's: scored, never registered or recorded
    base_model_only: bool = False  # evaluate the base model alone (no adapter), whatever the target names
    limit: int | None = None
    endpoint: str | None = None
    use_cache: bool = True
    output_dir: Path | None = None
    gateway_target: str | None = None  # endpoint is an llmops gateway: send to the route, pinned to this target
    api_key: str | None = None
    engine_api_key: str | None = None  # requests straight to an engine: its key (else LLMOPS_ENGINE_KEY, or the key
    # file of the route's engine when the suite's route names it; see llmops.engine.keys)
    label: str | None = None  # what the progress shows (default: "evaluating <release>")


@dataclass(frozen=True)
class EvalRun:
    outcome: EvalOutcome
    record_id: str  # "" for a draft prompt's run (reports only, no eval record)
    report_dir: Path
    draft: DraftRelease | None = None  # the candidate, when its prompt is a draft file


def _gateway_file(ws: Workspace, route: str) -> GatewayFile:
    path = ws.asset_dir("serving") / "gateway.yaml"
    if not path.is_file():
        raise ConfigError.at(GATEWAY_FILE, f"suite targets route {route!r} but there is no gateway config")
    spec = load_gateway_file(path, display=GATEWAY_FILE)
    if route not in spec.routes:
        raise ConfigError.at(GATEWAY_FILE, f"no route {route!r}", field="routes")
    return spec


def _route_engine_key(ws: Workspace, route: str) -> str | None:
    """The API key of the engine a route's first target runs on (its ``api_key_env``, else its key file)."""
    spec = _gateway_file(ws, route)
    name = engine_of(spec.routes[route].targets[0], spec.engines)
    return client_key(ws.home, name, spec.engines[name].api_key_env)


def _route_releases(registry: Registry, route: str) -> tuple[Release, Release | None, str]:
    """A route suite's releases: its first target as configured, its production release, its engine's URL."""
    spec = _gateway_file(registry.ws, route)
    target = spec.routes[route].targets[0]
    engine = spec.engines[target.engine] if target.engine else next(iter(spec.engines.values()))
    configured = configured_release(target, registry.ws.settings.models.base_model)
    recorded = registry.pointers.at_stage(route, "production")
    production = None
    if recorded is not None:
        production = Release(
            configured.base_model, recorded.release.adapter, recorded.release.prompt, configured.params
        )
    return configured, production, engine.url


def _production_aliases(registry: Registry, release: Release) -> Release | None:
    """For a suite naming an explicit release: the same adapter and prompt at their ``production`` aliases."""
    adapter = AdapterRef(release.adapter.name, alias="production") if release.adapter else None
    prompt = PromptRef(release.prompt.name, alias="production") if release.prompt else None
    if adapter and registry.adapters.alias_version(adapter.name, "production") is None:
        return None
    if prompt and registry.prompts.alias_version(prompt.name, "production") is None:
        return None
    return Release(release.base_model, adapter, prompt, release.params)


def _target_releases(
    registry: Registry, suite: EvalSuite, opts: RunOptions
) -> tuple[Release, Release | None, str | None]:
    """(candidate, production or None, engine URL from the route config or None)."""
    if suite.target.route:
        configured, production, engine_url = _route_releases(registry, suite.target.route)
    else:
        assert suite.target.release is not None
        spec = suite.target.release
        base = spec.base_model or registry.ws.settings.models.base_model
        configured = Release.of(base, spec.adapter, spec.prompt, spec.params)
        engine_url = None
        production = _production_aliases(registry, configured)
    adapter = None if opts.base_model_only else (opts.candidate or configured.adapter)
    prompt = None if opts.prompt_file else (opts.prompt or configured.prompt)  # a draft joins after resolving
    candidate = Release(configured.base_model, adapter, prompt, configured.params)
    return candidate, production, engine_url


@contextmanager
def _engine(ws: Workspace, base_model: str, url: str | None, api_key: str | None) -> Iterator[EngineEndpoint]:
    if url:
        yield attach(url, api_key)  # the engine's key: --api-key, else LLMOPS_ENGINE_KEY
        return
    with local_engine(locate_base(ws, base_model), ws.logs_dir / "eval-engine.log") as endpoint:
        yield endpoint


NO_PRODUCTION = "no production release"


@dataclass
class _Plan:
    """One candidate's run, resolved and checked before any request: what to score and against what."""

    opts: RunOptions
    suite: EvalSuite
    cases: list[Any]
    suite_hash: str
    candidate: ResolvedRelease
    production: ResolvedRelease | None
    engine_url: str | None
    baseline: dict[str, float] | None
    production_source: str  # NO_PRODUCTION, "candidate is production", "record RUN_ID", "computed in this run"
    score_production: bool  # no record of production's scores on this suite: score it in this run
    api_key: str | None
    cases_dataset: DatasetInfo | None = None  # the case file as stored in the registry


def _store_cases(registry: Registry, suite_path: Path, suite: EvalSuite) -> DatasetInfo:
    """The suite's case file, stored in the registry (fingerprint: :func:`case_file_fingerprint`)."""
    path = cases_path(suite_path, suite)
    fingerprint, rows = case_file_fingerprint(path)
    return registry.datasets.store(
        [path], fingerprint=fingerprint, name=f"{suite.name}-cases", kind="eval-cases", rows=rows,
        source=registry.ws.shown(path), validation={"cases": rows, "schema_problems": 0},
    )  # fmt: skip


def _plan(registry: Registry, suite_path: Path, opts: RunOptions) -> _Plan:
    suite, cases, case_bytes = load_suite(suite_path, limit=opts.limit)
    suite_hash = suite.suite_hash(case_bytes)
    if opts.limit:
        suite_hash = hashlib.sha256(f"{suite_hash}:limit={opts.limit}".encode()).hexdigest()
    wanted, wanted_production, engine_url = _target_releases(registry, suite, opts)
    candidate = registry.resolve(wanted)
    if opts.prompt_file is not None:
        candidate = draft_release(candidate, opts.prompt_file, registry.ws.shown(opts.prompt_file))
    production = registry.resolve(wanted_production) if wanted_production else None
    needs_baseline = any(g.relative for g in suite.gates)
    if production is None and any(g.relative and g.when_no_production == "error" for g in suite.gates):
        raise LlmopsError(
            f"suite {suite.name} has gates relative to production, but no production release exists "
            "(promote one first, or drop the relative gates)"
        )
    if opts.gateway_target and not (opts.endpoint and suite.target.route):
        raise LlmopsError("a gateway target needs --endpoint (the gateway's URL) and a suite whose target is a route")
    baseline: dict[str, float] | None = None
    production_source = NO_PRODUCTION
    if production is not None and needs_baseline:
        if production.key == candidate.key:
            production_source = "candidate is production"
        else:
            found = registry.evals.find(suite_hash=suite_hash, release_key=production.key)
            if found:
                baseline, production_source = found[0].metrics, f"record {found[0].run_id}"
    api_key = opts.api_key or (os.environ.get(suite.target.api_key_env) if suite.target.api_key_env else None)
    return _Plan(
        opts, suite, cases, suite_hash, candidate, production, engine_url, baseline, production_source,
        production is not None and needs_baseline and production_source == NO_PRODUCTION, api_key,
        None if opts.prompt_file else _store_cases(registry, suite_path, suite),  # a draft's run writes nothing
    )  # fmt: skip


def _endpoint(ws: Workspace, plan: _Plan, stack: ExitStack) -> EngineEndpoint:
    """Where ``plan`` sends its requests: the gateway, a running engine, or one started for the run."""
    opts = plan.opts
    if opts.gateway_target:
        assert opts.endpoint is not None
        return EngineEndpoint(opts.endpoint.rstrip("/").removesuffix("/v1"), str(plan.suite.target.route))
    url = opts.endpoint or plan.suite.target.endpoint or plan.engine_url
    key = opts.engine_api_key
    if key is None and url is not None and url == plan.engine_url and plan.suite.target.route:
        key = _route_engine_key(ws, plan.suite.target.route)  # the route's engine, as the gateway reaches it
    try:
        return stack.enter_context(_engine(ws, plan.candidate.base_model, url, key))
    except ServerError as exc:
        if url is None or url != plan.engine_url or opts.endpoint or plan.suite.target.endpoint:
            raise  # an engine started here, or a URL the user named: the message already says which
        route = plan.suite.target.route
        raise ServerError(
            f"{exc}; that is the engine of route {route} in {GATEWAY_FILE}: start it "
            f"(llmops serve engine --port PORT), or pass --endpoint URL"
        ) from exc


def _load_adapter(registry: Registry, endpoint: EngineEndpoint, release: ResolvedRelease) -> None:
    """Put the release's adapter (fetched from the registry, sha256-verified) into the engine."""
    if release.adapter is not None:
        endpoint.ensure_adapter(release.adapter.lora_name, registry.adapters.fetch(release.adapter))


async def _score(plan: _Plan, release: ResolvedRelease, endpoint: EngineEndpoint, cache: OutputCache,
                 tick: Callable[[int], None] | None) -> ReleaseScores:  # fmt: skip
    suite, opts = plan.suite, plan.opts
    if opts.gateway_target:
        responder = OpenAIResponder(
            endpoint.base_url, str(suite.target.route), api_key=plan.api_key, timeout_s=suite.request_timeout_s,
            headers={"x-llmops-target": opts.gateway_target},
        )  # fmt: skip
    else:
        responder = OpenAIResponder(
            endpoint.base_url,
            endpoint.model_for(release.lora_name),
            api_key=endpoint.api_key or plan.api_key,
            timeout_s=suite.request_timeout_s,
        )
    scope = f"|gateway-target:{opts.gateway_target}" if opts.gateway_target else ""
    try:
        return await score_release(suite, plan.cases, release, responder, cache, tick, cache_scope=scope)
    finally:
        await responder.aclose()


def _record(registry: Registry, plan: _Plan, scores: ReleaseScores, verdict: str, reports: list[Path]) -> str:
    return registry.evals.log(
        suite=plan.suite.name,
        suite_hash=plan.suite_hash,
        release=scores.release.release,
        verdict=verdict,
        metrics=scores.metrics,
        params={"cases": len(scores.cases), "cached_outputs": scores.cached},
        artifacts=reports,
        inputs=[plan.cases_dataset] if plan.cases_dataset else [],
    )


def _finish(registry: Registry, plan: _Plan, cand_scores: ReleaseScores, prod_scores: ReleaseScores | None) -> EvalRun:
    """Gate, write the reports and record the outcome (and production's scores when computed here)."""
    suite, production = plan.suite, plan.production
    baseline, production_source = plan.baseline, plan.production_source
    if prod_scores is not None:
        baseline, production_source = prod_scores.metrics, "computed in this run"
    if production_source == "candidate is production":
        baseline, prod_scores = cand_scores.metrics, cand_scores
    gates = evaluate(suite.gates, cand_scores.metrics, baseline)
    if prod_scores is None and baseline is not None and production is not None:
        prod_scores = ReleaseScores(production, dict(baseline), [])
    outcome = EvalOutcome(suite.name, plan.suite_hash, cand_scores, prod_scores, production_source, gates)
    report_dir = plan.opts.output_dir or registry.ws.home / "evals" / suite.name / time.strftime("%Y%m%d-%H%M%S")
    paths = write_reports(outcome, report_dir)
    draft = plan.candidate if isinstance(plan.candidate, DraftRelease) else None
    if draft is not None:  # not a registered release: a record could pass for evidence of one; the registry stays as is
        return EvalRun(outcome, "", report_dir, draft)
    record_id = _record(registry, plan, cand_scores, "pass" if outcome.passed else "fail", list(paths.values()))
    if production_source == "computed in this run" and prod_scores is not None and production is not None:
        own = evaluate(suite.gates, prod_scores.metrics, prod_scores.metrics)
        _record(registry, plan, prod_scores, "pass" if all(g.passed for g in own) else "fail", [])
    return EvalRun(outcome, record_id, report_dir)


def run_eval(ws: Workspace, suite_path: Path, opts: RunOptions, *, reporter: Reporter = SILENT) -> EvalRun:
    """Run one suite against the candidate (and production when needed); write reports and the record."""
    registry = connect(ws)
    plan = _plan(registry, suite_path, opts)
    variants = bias_mod.variant_count(plan.cases, plan.suite.bias) if plan.suite.bias else 0
    cache = OutputCache(ws.cache_dir / "evals" if opts.use_cache else None)

    def scored(label: str, release: ResolvedRelease, endpoint: EngineEndpoint) -> ReleaseScores:
        task = reporter.task(label, len(plan.cases) + variants)
        try:
            return asyncio.run(_score(plan, release, endpoint, cache, task.advance))
        finally:
            task.close()

    with ExitStack() as stack:
        endpoint = _endpoint(ws, plan, stack)
        if not opts.gateway_target:
            _load_adapter(registry, endpoint, plan.candidate)
        cand_scores = scored(opts.label or f"evaluating {plan.candidate.label()}", plan.candidate, endpoint)
        prod_scores = None
        if plan.score_production and plan.production is not None:
            _load_adapter(registry, endpoint, plan.production)
            prod_scores = scored(f"scoring production ({plan.production.label()})", plan.production, endpoint)
    return _finish(registry, plan, cand_scores, prod_scores)
