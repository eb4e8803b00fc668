"""Score one release on a suite: answer every case (and bias variant), then compute every metric."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llmops.errors import PromptError
from llmops.evals import bias as bias_mod
from llmops.evals.cases import Case
from llmops.evals.metrics import Sample, build_scorers, mean_strict, percentile
from llmops.evals.responders import Responder
from llmops.evals.runner import Outcome, OutputCache, run_cases
from llmops.evals.spec import EvalSuite
from llmops.prompts.render import render_messages
from llmops.registry.resolved import ResolvedRelease


@dataclass
class ReleaseScores:
    release: ResolvedRelease
    metrics: dict[str, float]
    cases: list[dict[str, Any]]
    bias: bias_mod.BiasResult | None = None
    cached: int = 0
    errors: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def renderer(release: ResolvedRelease) -> Callable[[Case], list[dict[str, str]]]:
    """How a case becomes chat messages for ``release``: through its prompt version, or as given."""

    def render(case: Case) -> list[dict[str, str]]:
        if case.variables is not None:
            if release.prompt is None:
                raise PromptError(f"case {case.id} has variables but the release has no prompt version")
            return render_messages(release.prompt.spec, case.variables, version=release.prompt.version or None)
        assert case.messages is not None
        return [m.model_dump() for m in case.messages]

    return render


def _user_input(messages: list[dict[str, str]]) -> str:
    users = [m["content"] for m in messages if m["role"] == "user"]
    return users[-1] if users else ""


async def score_release(
    suite: EvalSuite,
    cases: list[Case],
    release: ResolvedRelease,
    responder: Responder,
    cache: OutputCache,
    progress: Callable[[int], None] | None = None,
    *,
    cache_scope: str = "",
) -> ReleaseScores:
    """Answer all cases (and bias variants) for ``release`` and compute the suite's metrics.

    ``cache_scope`` separates cached outputs by serving path: answers fetched through a gateway are
    not reused for a direct engine run, nor the other way round.
    """
    render = renderer(release)
    params = release.request_params()
    scorers = build_scorers(suite.metric_specs(), suite.judge)
    variants = bias_mod.expand(cases, suite.bias) if suite.bias else []
    everything = cases + [v.case for v in variants]
    outcomes: list[Outcome] = await run_cases(
        everything, render, responder, params, release_key=release.key + cache_scope, concurrency=suite.concurrency,
        cache=cache, progress=progress,
    )  # fmt: skip
    main, extra = outcomes[: len(cases)], outcomes[len(cases) :]

    per_case: list[dict[str, Any]] = []
    columns: dict[str, list[float]] = {s.name: [] for s in scorers}
    for case, outcome in zip(cases, main, strict=True):
        sample = Sample(case, _user_input(outcome.messages), outcome.answer.text)
        row: dict[str, Any] = {
            "id": case.id, "output": outcome.answer.text, "reference": case.reference,
            "latency_ms": outcome.answer.latency_ms, "ttft_ms": outcome.answer.ttft_ms,
            "cached": outcome.cached, "error": outcome.error, "attributes": case.attributes,
        }  # fmt: skip
        for scorer in scorers:
            value = float("nan") if outcome.error else await scorer.score(sample)
            columns[scorer.name].append(value)
            row[scorer.name] = value
        per_case.append(row)

    metrics = {name: mean_strict(values) for name, values in columns.items()}
    if any(m.name == "latency" for m in suite.metric_specs()):
        ok = [o.answer for o in main if o.error is None]
        lat = [a.latency_ms for a in ok]
        ttft = [a.ttft_ms for a in ok]
        failed = len(ok) < len(main)
        for q in (50, 95, 99):
            metrics[f"latency_p{q}_ms"] = float("nan") if failed else percentile(lat, q)
            metrics[f"ttft_p{q}_ms"] = float("nan") if failed else percentile(ttft, q)

    result = ReleaseScores(release, metrics, per_case)
    if suite.bias:
        score_name = suite.bias.score
        scorer = next(s for s in scorers if s.name == score_name)
        scores = []
        for variant, outcome in zip(variants, extra, strict=True):
            sample = Sample(variant.case, _user_input(outcome.messages), outcome.answer.text)
            scores.append(float("nan") if outcome.error else await scorer.score(sample))
        originals = {str(c.id): o.answer.text for c, o in zip(cases, main, strict=True)}
        result.bias = bias_mod.analyse(variants, scores, [o.answer.text for o in extra], originals)
        metrics["bias_gap"] = result.bias.gap
        metrics["bias_change_rate"] = result.bias.change_rate
    result.cached = sum(o.cached for o in outcomes)
    result.errors = sum(o.error is not None for o in outcomes)
    return result


def finite(metrics: dict[str, float]) -> dict[str, float]:
    """Only the finite metrics (MLflow refuses NaN in some stores; NaN is reported in the report)."""
    return {k: v for k, v in metrics.items() if not math.isnan(v)}
