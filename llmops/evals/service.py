"""``llmops eval run``: resolve the candidate and production releases, serve, score, gate, record.

Order matters for the user: every check that needs no request (suite schema, case file, references,
a production baseline for relative gates) runs before the first request is sent.
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

from llmops.adapters.registry import AdapterRegistry
from llmops.config.workspace import Workspace
from llmops.errors import ConfigError, LlmopsError, ServerError
from llmops.evals import bias as bias_mod
from llmops.evals import record as records
from llmops.evals.files import load_suite
from llmops.evals.gates import evaluate
from llmops.evals.report import EvalOutcome, write_reports
from llmops.evals.responders import OpenAIResponder
from llmops.evals.runner import OutputCache
from llmops.evals.scoring import ReleaseScores, score_release
from llmops.evals.serving import EngineEndpoint, attach, local_engine
from llmops.evals.spec import EvalSuite
from llmops.prompts.registry import PromptRegistry
from llmops.registry.tracking import connect
from llmops.release_store import ReleaseStore
from llmops.releases import Release, resolve


@dataclass(frozen=True)
class RunOptions:
    candidate: str | None = None  # adapter ref overriding the target's
    prompt: str | None = None  # prompt ref overriding the target's
    limit: int | None = None
    endpoint: str | None = None
    use_cache: bool = True
    output_dir: Path | None = None
    gateway_target: str | None = None  # endpoint is an llmops gateway: send to the route, pinned to this target
    api_key: str | None = None


@dataclass(frozen=True)
class EvalRun:
    outcome: EvalOutcome
    record_id: str
    report_dir: Path


@dataclass(frozen=True)
class _Refs:
    base_model: str
    adapter: str | None
    prompt: str | None
    params: dict[str, Any]


def _route_refs(ws: Workspace, route: str, stage: str | None) -> tuple[_Refs | None, str | None]:
    """The route's release refs at ``stage`` (None: its first target as configured) and its engine URL."""
    from llmops.gateway.config import load_gateway_file

    path = ws.asset_dir("serving") / "gateway.yaml"
    if not path.is_file():
        raise ConfigError.at("serving/gateway.yaml", f"suite targets route {route!r} but there is no gateway config")
    spec = load_gateway_file(path, display="serving/gateway.yaml")
    if route not in spec.routes:
        raise ConfigError.at("serving/gateway.yaml", f"no route {route!r}", field="routes")
    target = spec.routes[route].targets[0]
    engine = spec.engines[target.engine] if target.engine else next(iter(spec.engines.values()))
    params = target.params.as_request()
    base = ws.settings.models.base_model
    if stage is None:
        return _Refs(base, target.adapter, target.prompt, params), engine.url
    pointer = ReleaseStore(connect(ws), ws).at_stage(route, stage)
    if pointer is not None:
        return _Refs(base, None if pointer.adapter == "none" else pointer.adapter,
                     None if pointer.prompt == "none" else pointer.prompt, params), engine.url  # fmt: skip
    return None, engine.url


def _target_refs(ws: Workspace, suite: EvalSuite, opts: RunOptions) -> tuple[_Refs, _Refs | None, str | None]:
    """(candidate refs, production refs or None, engine URL from the route config or None)."""
    tgt = suite.target
    if tgt.route:
        configured, engine_url = _route_refs(ws, tgt.route, None)
        production, _ = _route_refs(ws, tgt.route, "production")
        assert configured is not None
    else:
        assert tgt.release is not None
        rel = tgt.release
        configured = _Refs(rel.base_model or ws.settings.models.base_model, rel.adapter, rel.prompt, dict(rel.params))
        engine_url = None
        production = None
        client = connect(ws)
        adapter_name = rel.adapter.split("@")[0].split("/")[0] if rel.adapter else None
        prompt_name = rel.prompt.split("@")[0].split("/")[0] if rel.prompt else None
        has_adapter = adapter_name is None or AdapterRegistry(client, ws).alias_version(adapter_name, "production")
        has_prompt = prompt_name is None or PromptRegistry(client, ws).alias_version(prompt_name, "production")
        if has_adapter and has_prompt:
            production = _Refs(configured.base_model, adapter_name and f"{adapter_name}@production",
                               prompt_name and f"{prompt_name}@production", configured.params)  # fmt: skip
    candidate = _Refs(
        configured.base_model,
        opts.candidate if opts.candidate is not None else configured.adapter,
        opts.prompt if opts.prompt is not None else configured.prompt,
        configured.params,
    )
    if candidate.adapter in ("none", ""):
        candidate = _Refs(candidate.base_model, None, candidate.prompt, candidate.params)
    return candidate, production, engine_url


def _resolve(ws: Workspace, refs: _Refs) -> Release:
    client = connect(ws)
    return resolve(AdapterRegistry(client, ws), PromptRegistry(client, ws), base_model=refs.base_model,
                   adapter=refs.adapter, prompt=refs.prompt, params=refs.params)  # fmt: skip


@contextmanager
def _engine(ws: Workspace, base_model: str, url: str | None) -> Iterator[EngineEndpoint]:
    if url:
        yield attach(url)
        return
    from llmops.models.catalog import resolve_base_model

    with local_engine(ws, resolve_base_model(ws, base_model)) as endpoint:
        yield endpoint


@dataclass
class _Plan:
    """One candidate's run, resolved and checked before any request: what to score and against what."""

    opts: RunOptions
    suite: EvalSuite
    cases: list[Any]
    suite_hash: str
    candidate: Release
    production: Release | None
    engine_url: str | None
    baseline: dict[str, float] | None
    production_source: str
    score_production: bool  # no record of production's scores on this suite: score it in this run
    api_key: str | None


def _plan(ws: Workspace, suite_path: Path, opts: RunOptions) -> _Plan:
    suite, cases, case_bytes = load_suite(suite_path, limit=opts.limit)
    suite_hash = suite.suite_hash(case_bytes)
    if opts.limit:
        suite_hash = hashlib.sha256(f"{suite_hash}:limit={opts.limit}".encode()).hexdigest()
    cand_refs, prod_refs, engine_url = _target_refs(ws, suite, opts)
    candidate = _resolve(ws, cand_refs)
    production = _resolve(ws, prod_refs) if prod_refs else None
    needs_baseline = any(g.relative for g in suite.gates)
    if production is None and any(g.relative and g.when_no_production == "error" for g in suite.gates):
        raise LlmopsError(
            f"suite {suite.name} has gates relative to production, but no production release exists "
            "(promote one first, or drop the relative gates)"
        )
    if opts.gateway_target and not (opts.endpoint and suite.target.route):
        raise LlmopsError("a gateway target needs --endpoint (the gateway's URL) and a suite whose target is a route")
    baseline: dict[str, float] | None = None
    production_source = "none"
    if production is not None and needs_baseline:
        if production.key() == candidate.key():
            production_source = "candidate is production"
        else:
            found = records.find_records(connect(ws), suite_hash=suite_hash, release_key=production.key())
            if found:
                baseline, production_source = found[0].metrics, f"record {found[0].run_id}"
    api_key = opts.api_key or (os.environ.get(suite.target.api_key_env) if suite.target.api_key_env else None)
    return _Plan(
        opts, suite, cases, suite_hash, candidate, production, engine_url, baseline, production_source,
        production is not None and needs_baseline and production_source == "none", api_key,
    )  # fmt: skip


def _endpoint(ws: Workspace, plan: _Plan, stack: ExitStack) -> EngineEndpoint:
    """Where ``plan`` sends its requests: the gateway, a running engine, or one started for the run."""
    opts = plan.opts
    if opts.gateway_target:
        assert opts.endpoint is not None
        return EngineEndpoint(opts.endpoint.rstrip("/").removesuffix("/v1"), str(plan.suite.target.route))
    url = opts.endpoint or plan.suite.target.endpoint or plan.engine_url
    try:
        return stack.enter_context(_engine(ws, plan.candidate.base_model, url))
    except ServerError as exc:
        if url is None or url != plan.engine_url or opts.endpoint or plan.suite.target.endpoint:
            raise  # an engine started here, or a URL the user named: the message already says which
        route = plan.suite.target.route
        raise ServerError(
            f"{exc}; that is the engine of route {route} in serving/gateway.yaml: start it "
            f"(llmops serve engine --port PORT), or pass --endpoint URL"
        ) from exc


async def _score(plan: _Plan, release: Release, endpoint: EngineEndpoint, cache: OutputCache,
                 tick: Callable[[int], None] | None) -> ReleaseScores:  # fmt: skip
    suite, opts = plan.suite, plan.opts
    if opts.gateway_target:
        responder = OpenAIResponder(
            endpoint.base_url, str(suite.target.route), api_key=plan.api_key, timeout_s=suite.request_timeout_s,
            headers={"x-llmops-target": opts.gateway_target},
        )  # fmt: skip
    else:
        responder = OpenAIResponder(
            endpoint.base_url, endpoint.model_for(release), api_key=plan.api_key, timeout_s=suite.request_timeout_s
        )
    scope = f"|gateway-target:{opts.gateway_target}" if opts.gateway_target else ""
    try:
        return await score_release(suite, plan.cases, release, responder, cache, tick, cache_scope=scope)
    finally:
        await responder.aclose()


def _finish(ws: Workspace, plan: _Plan, cand_scores: ReleaseScores, prod_scores: ReleaseScores | None) -> EvalRun:
    """Gate, write the reports and record the outcome (and production's scores when computed here)."""
    client = connect(ws)
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
    report_dir = plan.opts.output_dir or ws.home / "evals" / suite.name / time.strftime("%Y%m%d-%H%M%S")
    paths = write_reports(outcome, report_dir)
    record_id = records.log_outcome(client, ws, outcome, paths)
    if production_source == "computed in this run" and prod_scores is not None and production is not None:
        verdict = (
            "pass" if all(g.passed for g in evaluate(suite.gates, prod_scores.metrics, prod_scores.metrics)) else "fail"
        )
        records.log_scores(client, ws, suite.name, plan.suite_hash, prod_scores, verdict)
    return EvalRun(outcome, record_id, report_dir)


def run_eval(
    ws: Workspace,
    suite_path: Path,
    opts: RunOptions,
    *,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
) -> EvalRun:
    """Run one suite against the candidate (and production when needed); write reports and the record."""
    plan = _plan(ws, suite_path, opts)
    adapters = AdapterRegistry(connect(ws), ws)

    def tick(label: str) -> Callable[[int], None] | None:
        variants = bias_mod.variant_count(plan.cases, plan.suite.bias) if plan.suite.bias else 0
        return progress(label, len(plan.cases) + variants) if progress else None

    cache = OutputCache(ws.cache_dir / "evals" if opts.use_cache else None)
    with ExitStack() as stack:
        endpoint = _endpoint(ws, plan, stack)
        if not opts.gateway_target:
            endpoint.ensure_adapter(plan.candidate, adapters)
        cand_scores = asyncio.run(_score(plan, plan.candidate, endpoint, cache, tick("candidate")))
        prod_scores = None
        if plan.score_production and plan.production is not None:
            endpoint.ensure_adapter(plan.production, adapters)
            prod_scores = asyncio.run(_score(plan, plan.production, endpoint, cache, tick("production")))
    return _finish(ws, plan, cand_scores, prod_scores)
