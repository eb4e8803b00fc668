"""The checks of a rollout step: canary arm vs stable arm over the step's window, and the step's verdict.

Every check is a one-sided test of "the canary is worse than the stable beyond the check's tolerance" and
reports an **always-valid p-value** (:mod:`llmops.rollout.stats`: a normal-mixture sequential probability
ratio test, Johari et al. 2017): the controller looks every few seconds and stops at the first failure, and
``P(some look has p <= alpha) <= alpha`` under the null however many looks it takes, which a fixed-sample
p-value read at every look does not give. ``alpha = 1 - confidence`` per check and step (Kayenta: 0.98);
the tolerances put an equal canary well inside the null, so its false-abort rate is far below alpha.

=================  ===========================================================================================
check              rule (fail when, with ``p <= alpha``) -- statistic -- compared values
=================  ===========================================================================================
``error_rate``     canary - stable error rate > ``max_increase`` (errors: :func:`llmops.rollout.samples.failed`) --
                   z of the Agresti-Caffo difference (Fisher's exact one-sided p in ``detail``) -- the rates
``latency``        Kayenta's Mann-Whitney judge: the anytime-valid lower bound of the canary's shift exceeds
                   ``tolerance`` x |Hodges-Lehmann shift| AND p95(canary) / p95(stable) > ``max_p95_ratio``
                   -- U of (canary - tolerated shift) vs stable -- the p95s in ms (successful requests)
``latency_slo``    (with ``slo_p95_ms``) the share of canary requests slower than the SLO is above 5%, i.e.
                   the canary's p95 is above the SLO -- z of that share -- canary p95, stable p95; canary only
``json_validity``  stable - canary share of captured answers that parse as JSON > ``max_decrease`` -- z of
                   the Agresti-Caffo difference (Fisher's p in ``detail``) -- the valid shares
``feedback_score`` stable - canary mean feedback score > ``max_decrease`` -- Welch z (scipy's Welch t-test
                   p in ``detail``) -- the means
``output_drift``   a classifier tells canary answers from stable ones: ROC AUC > ``max_auc`` -- z of the AUC
                   (Hanley-McNeil standard error) -- canary = the AUC (needs an embedder)
=================  ===========================================================================================

**No verdict below the minimum sample**: a check is ``inconclusive`` (p None) until both arms have the step's
``min_samples`` requests (``latency_slo``: the canary alone), and until its own units reach their minimum:
:data:`MIN_ANSWERS` captured answers per arm for ``json_validity``, the check's ``min_samples`` scores or
answers for ``feedback_score`` and ``output_drift``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from llmops.config.rollout import (
    ChecksSpec,
    ErrorRateCheck,
    FeedbackScoreCheck,
    JsonValidityCheck,
    LatencyCheck,
    OutputDriftCheck,
    StepSpec,
)
from llmops.monitor.descriptors import json_valid
from llmops.monitor.drift import classifier_auc, subsample
from llmops.monitor.embeddings import Embedder
from llmops.rollout import stats

Verdict = Literal["pass", "fail", "inconclusive"]
MIN_ANSWERS = 30  # captured answers per arm before json_validity has a verdict (normal approximation)
SLO_SHARE = 0.05  # p95 above the SLO <=> more than 5% of requests slower than it
DRIFT_SAMPLE = 500  # answers per arm embedded for output_drift


@dataclass(frozen=True)
class ArmData:
    """One arm (canary or stable) over the step's window."""

    errors: Sequence[bool]  # one per request: True = the release failed it (5xx, 4xx but 429/499)
    latencies_ms: Sequence[float]  # successful requests only
    outputs: Sequence[str]  # captured answer texts (may be fewer than requests)
    scores: Sequence[float]  # feedback scores of this arm's requests

    @property
    def requests(self) -> int:
        return len(self.errors)


@dataclass(frozen=True)
class CheckResult:
    """One check at one look: ``fail`` only with ``p_value <= 1 - confidence`` (latency: and the p95 ratio)."""

    check: str
    verdict: Verdict
    n_canary: int
    n_stable: int
    canary: float | None
    stable: float | None
    statistic: float | None
    p_value: float | None  # always-valid (anytime) p-value; None below the minimum sample
    threshold: str
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (a non-finite number becomes None)."""
        return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CheckResult:
        return cls(
            check=str(d["check"]),
            verdict=d["verdict"],
            n_canary=int(d["n_canary"]),
            n_stable=int(d["n_stable"]),
            canary=_opt_float(d.get("canary")),
            stable=_opt_float(d.get("stable")),
            statistic=_opt_float(d.get("statistic")),
            p_value=_opt_float(d.get("p_value")),
            threshold=str(d.get("threshold", "")),
            detail=str(d.get("detail", "")),
        )


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _below(check: str, n_canary: int, n_stable: int, threshold: str, need: str, **values: float | None) -> CheckResult:
    return CheckResult(check, "inconclusive", n_canary, n_stable, values.get("canary"), values.get("stable"),
                       None, None, threshold, f"below the minimum sample ({need})")  # fmt: skip


def _judge(p: float, alpha: float) -> Verdict:
    return "fail" if p <= alpha else "pass"


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}g}"


def error_rate(
    spec: ErrorRateCheck, canary: ArmData, stable: ArmData, *, alpha: float, min_samples: int
) -> CheckResult:
    threshold = f"canary - stable error rate > {spec.max_increase:g}"
    nc, ns = canary.requests, stable.requests
    if min(nc, ns) < min_samples:
        return _below("error_rate", nc, ns, threshold, f"{min_samples} requests per arm")
    cmp = stats.rate_increase(sum(map(bool, canary.errors)), nc, sum(map(bool, stable.errors)), ns,
                              margin=spec.max_increase)  # fmt: skip
    detail = (f"difference {cmp.test.estimate:+.4f} (Agresti-Caffo) se {cmp.test.se:.4f}; "
              f"fixed-sample p {_fmt(cmp.test.fixed_p)}; Fisher's exact p (no tolerance) {_fmt(cmp.fisher_p)}")  # fmt: skip
    return CheckResult("error_rate", _judge(cmp.test.p_value, alpha), nc, ns, cmp.canary_rate, cmp.stable_rate,
                       cmp.test.z, cmp.test.p_value, threshold, detail)  # fmt: skip


def latency(
    spec: LatencyCheck, canary: ArmData, stable: ArmData, *, alpha: float, min_samples: int, seed: int
) -> CheckResult:
    threshold = f"shift > {spec.tolerance:g} x |HL| and p95 ratio > {spec.max_p95_ratio:g}"
    nc, ns = len(canary.latencies_ms), len(stable.latencies_ms)
    p95c, p95s = stats.p95(canary.latencies_ms), stats.p95(stable.latencies_ms)
    if min(canary.requests, stable.requests) < min_samples or min(nc, ns) < 2:
        return _below("latency", nc, ns, threshold, f"{min_samples} requests per arm", canary=p95c, stable=p95s)
    cmp = stats.shift_increase(canary.latencies_ms, stable.latencies_ms, tolerance=spec.tolerance, alpha=alpha,
                               seed=seed)  # fmt: skip
    ratio = p95c / p95s if p95c is not None and p95s else math.inf
    slower = cmp.test.p_value <= alpha
    verdict: Verdict = "fail" if slower and ratio > spec.max_p95_ratio else "pass"
    detail = (f"Hodges-Lehmann shift {cmp.hodges_lehmann:+.1f} ms, tolerated {cmp.null_shift:.1f} ms, anytime-valid "
              f"lower bound {cmp.lower_bound:+.1f} ms; p95 ratio {ratio:.3f}; Mann-Whitney fixed-sample p "
              f"{_fmt(cmp.fixed_p)} (on {cmp.n_canary} vs {cmp.n_stable} values)")  # fmt: skip
    if slower and verdict == "pass":
        detail += f"; slower beyond the band but p95 ratio within {spec.max_p95_ratio:g}"
    return CheckResult("latency", verdict, nc, ns, p95c, p95s, cmp.u, cmp.test.p_value, threshold, detail)


def latency_slo(slo_ms: float, canary: ArmData, stable: ArmData, *, alpha: float, min_samples: int) -> CheckResult:
    threshold = f"canary p95 > {slo_ms:g} ms (over {SLO_SHARE:.0%} of requests slower)"
    nc, ns = len(canary.latencies_ms), len(stable.latencies_ms)
    p95c, p95s = stats.p95(canary.latencies_ms), stats.p95(stable.latencies_ms)
    if canary.requests < min_samples or nc == 0:
        return _below("latency_slo", nc, ns, threshold, f"{min_samples} canary requests", canary=p95c, stable=p95s)
    slow = int(np.count_nonzero(np.asarray(canary.latencies_ms, dtype=float) > slo_ms))
    test, exact = stats.share_above(slow, nc, share=SLO_SHARE)
    detail = f"{slow}/{nc} canary requests slower than {slo_ms:g} ms; exact binomial p {_fmt(exact)}"
    return CheckResult("latency_slo", _judge(test.p_value, alpha), nc, ns, p95c, p95s, test.z, test.p_value,
                       threshold, detail)  # fmt: skip


def _invalid(outputs: Sequence[str]) -> int:
    """How many answers do not parse as JSON (each distinct text parsed once: answers repeat a lot)."""
    return sum(n for text, n in Counter(outputs).items() if not json_valid(text))


def json_validity(
    spec: JsonValidityCheck, canary: ArmData, stable: ArmData, *, alpha: float, min_samples: int
) -> CheckResult:
    threshold = f"stable - canary JSON-valid share > {spec.max_decrease:g}"
    nc, ns = len(canary.outputs), len(stable.outputs)
    if min(canary.requests, stable.requests) < min_samples or min(nc, ns) < MIN_ANSWERS:
        need = f"{min_samples} requests and {MIN_ANSWERS} captured answers per arm"
        return _below("json_validity", nc, ns, threshold, need)
    bad_c, bad_s = _invalid(canary.outputs), _invalid(stable.outputs)
    cmp = stats.rate_increase(bad_c, nc, bad_s, ns, margin=spec.max_decrease)
    detail = (f"invalid {bad_c}/{nc} vs {bad_s}/{ns}; fixed-sample p {_fmt(cmp.test.fixed_p)}; "
              f"Fisher's exact p (no tolerance) {_fmt(cmp.fisher_p)}")  # fmt: skip
    return CheckResult("json_validity", _judge(cmp.test.p_value, alpha), nc, ns, 1 - bad_c / nc, 1 - bad_s / ns,
                       cmp.test.z, cmp.test.p_value, threshold, detail)  # fmt: skip


def feedback_score(
    spec: FeedbackScoreCheck, canary: ArmData, stable: ArmData, *, alpha: float, min_samples: int
) -> CheckResult:
    threshold = f"stable - canary mean score > {spec.max_decrease:g}"
    nc, ns = len(canary.scores), len(stable.scores)
    if min(canary.requests, stable.requests) < min_samples or min(nc, ns) < spec.min_samples:
        need = f"{min_samples} requests and {spec.min_samples} scores per arm"
        return _below("feedback_score", nc, ns, threshold, need)
    cmp = stats.mean_decrease(canary.scores, stable.scores, margin=spec.max_decrease)
    detail = f"difference {cmp.test.estimate:+.4f} se {cmp.test.se:.4f}; Welch fixed-sample p {_fmt(cmp.welch_p)}"
    return CheckResult("feedback_score", _judge(cmp.test.p_value, alpha), nc, ns, cmp.canary_mean, cmp.stable_mean,
                       cmp.test.z, cmp.test.p_value, threshold, detail)  # fmt: skip


def output_drift(
    spec: OutputDriftCheck,
    canary: ArmData,
    stable: ArmData,
    *,
    alpha: float,
    min_samples: int,
    embedder: Embedder | None,
    seed: int,
) -> CheckResult:
    threshold = f"canary-vs-stable classifier ROC AUC > {spec.max_auc:g}"
    nc, ns = len(canary.outputs), len(stable.outputs)
    if embedder is None:
        return CheckResult("output_drift", "inconclusive", nc, ns, None, None, None, None, threshold,
                           "no embedder: output drift not judged")  # fmt: skip
    if min(canary.requests, stable.requests) < min_samples or min(nc, ns) < spec.min_samples:
        return _below(
            "output_drift", nc, ns, threshold, f"{min_samples} requests and {spec.min_samples} answers per arm"
        )
    rng = np.random.default_rng(seed)
    texts_c = subsample(canary.outputs, DRIFT_SAMPLE, rng)
    texts_s = subsample(stable.outputs, DRIFT_SAMPLE, rng)
    x = np.concatenate([embedder.encode(texts_s), embedder.encode(texts_c)])
    y = np.concatenate([np.zeros(len(texts_s), dtype=int), np.ones(len(texts_c), dtype=int)])
    auc = classifier_auc(x, y, seed)
    test = stats.auc_above(auc, len(texts_c), len(texts_s), max_auc=spec.max_auc)
    detail = f"AUC {auc:.3f} se {test.se:.3f} (Hanley-McNeil) on {len(texts_c)} vs {len(texts_s)} answers"
    return CheckResult("output_drift", _judge(test.p_value, alpha), nc, ns, auc, None, test.z, test.p_value,
                       threshold, detail)  # fmt: skip


def analyse(
    checks: ChecksSpec,
    canary: ArmData,
    stable: ArmData,
    *,
    confidence: float,
    min_samples: int,
    embedder: Embedder | None = None,
    seed: int = 0,
) -> list[CheckResult]:
    """Every enabled check (``latency_slo`` after ``latency`` when an SLO is set), in CHECK_NAMES order."""
    alpha = 1.0 - confidence
    results: list[CheckResult] = []
    if checks.error_rate is not None:
        results.append(error_rate(checks.error_rate, canary, stable, alpha=alpha, min_samples=min_samples))
    if checks.latency is not None:
        results.append(latency(checks.latency, canary, stable, alpha=alpha, min_samples=min_samples, seed=seed))
        if checks.latency.slo_p95_ms is not None:
            results.append(latency_slo(checks.latency.slo_p95_ms, canary, stable, alpha=alpha, min_samples=min_samples))
    if checks.json_validity is not None:
        results.append(json_validity(checks.json_validity, canary, stable, alpha=alpha, min_samples=min_samples))
    if checks.feedback_score is not None:
        results.append(feedback_score(checks.feedback_score, canary, stable, alpha=alpha, min_samples=min_samples))
    if checks.output_drift is not None:
        results.append(output_drift(checks.output_drift, canary, stable, alpha=alpha, min_samples=min_samples,
                                    embedder=embedder, seed=seed))  # fmt: skip
    return results


def step_verdict(
    results: Sequence[CheckResult], *, elapsed_s: float, step: StepSpec, canary_n: int, stable_n: int
) -> Verdict | None:
    """The step's verdict at this look; None = keep looking.

    ``fail`` as soon as a check fails, once both arms have ``min_samples`` requests; ``pass`` from
    ``min_duration`` on with both arms at ``min_samples`` and no failed check (inconclusive checks, e.g. with a
    larger minimum of their own, do not block it); ``inconclusive`` at ``max_duration`` without the minimum
    sample. At weight 100 there is no concurrent stable traffic: only the canary's minimum counts (the
    controller compares with the previous step's stable window)."""
    enough = canary_n >= step.min_samples and (stable_n >= step.min_samples or step.weight >= 100)
    if enough and any(r.verdict == "fail" for r in results):
        return "fail"
    if enough and elapsed_s >= step.min_duration_s:
        return "pass"
    if elapsed_s >= step.max_duration_s:
        return "inconclusive"
    return None
