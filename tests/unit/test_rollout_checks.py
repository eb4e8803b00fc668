"""Canary checks on crafted arms (``analyse``) and the step's verdict rules (``step_verdict``)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
import pytest

from llmops.config.rollout import (
    ChecksSpec,
    FeedbackScoreCheck,
    JsonValidityCheck,
    LatencyCheck,
    OutputDriftCheck,
    StepSpec,
)
from llmops.rollout.checks import ArmData, CheckResult, analyse, step_verdict

VALID, INVALID = '{"intent": "billing", "priority": "high"}', "Sure! Here is the answer: intent billing"
ALL = ChecksSpec(
    json_validity=JsonValidityCheck(), feedback_score=FeedbackScoreCheck(), output_drift=OutputDriftCheck()
)


def arm(
    n: int,
    *,
    seed: int,
    error: float = 0.01,
    latency_x: float = 1.0,
    json_valid: float = 0.98,
    score: float = 0.8,
    answers: Sequence[str] = (VALID, INVALID),
) -> ArmData:
    """``n`` requests: Bernoulli errors, lognormal latencies (median 400 ms), an answer and a score per success."""
    rng = np.random.default_rng(seed)
    errors = rng.random(n) < error
    ok = int(n - errors.sum())
    valid = rng.random(ok) < json_valid
    return ArmData(
        errors=errors.tolist(),
        latencies_ms=(rng.lognormal(math.log(400), 0.35, ok) * latency_x).tolist(),
        outputs=[answers[0] if v else answers[1] for v in valid],
        scores=np.clip(rng.normal(score, 0.15, ok), 0, 1).tolist(),
    )


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.check: r for r in results}


class KeywordEmbedder:
    """A stand-in for the sentence embedder: a text's vector counts a few keywords (plus seeded noise)."""

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        rng = np.random.default_rng(len(texts))
        words = ("intent", "billing", "sure", "answer", "{")
        counts = np.array([[t.lower().count(w) for w in words] for t in texts], dtype=float)
        return counts + rng.normal(0, 0.1, counts.shape)


def test_identical_arms_pass_every_check() -> None:
    data = arm(600, seed=1)
    results = analyse(ALL, data, data, confidence=0.98, min_samples=100, embedder=KeywordEmbedder())
    assert [r.check for r in results] == ["error_rate", "latency", "json_validity", "feedback_score", "output_drift"]
    for r in results:
        assert r.verdict == "pass", r
        assert r.p_value is not None and r.p_value > 0.02


def test_equal_canary_and_stable_streams_pass() -> None:
    results = analyse(ALL, arm(800, seed=2), arm(2000, seed=3), confidence=0.98, min_samples=100)
    assert {r.check: r.verdict for r in results if r.check != "output_drift"} == dict.fromkeys(
        ["error_rate", "latency", "json_validity", "feedback_score"], "pass"
    )


def test_a_canary_with_more_errors_fails_error_rate() -> None:
    results = by_name(analyse(ChecksSpec(), arm(800, seed=4, error=0.08), arm(2000, seed=5), confidence=0.98,
                              min_samples=100))  # fmt: skip
    r = results["error_rate"]
    assert r.verdict == "fail" and r.p_value is not None and r.p_value <= 0.02
    assert r.canary is not None and r.stable is not None and r.canary > r.stable + 0.04
    assert "Fisher" in r.detail and r.threshold == "canary - stable error rate > 0.01"
    assert results["latency"].verdict == "pass"


def test_a_slow_canary_fails_latency() -> None:
    r = by_name(analyse(ChecksSpec(), arm(400, seed=6, latency_x=1.5), arm(2000, seed=7), confidence=0.98,
                        min_samples=100))["latency"]  # fmt: skip
    assert r.verdict == "fail" and r.p_value is not None and r.p_value <= 0.02
    assert r.canary is not None and r.stable is not None and r.canary / r.stable > 1.2
    assert "Hodges-Lehmann" in r.detail


def test_a_slightly_slower_canary_within_the_p95_ratio_passes() -> None:
    """Kayenta's band: a shift that is significant but whose p95 ratio stays under max_p95_ratio is no failure."""
    r = by_name(analyse(ChecksSpec(), arm(3000, seed=8, latency_x=1.08), arm(3000, seed=9), confidence=0.98,
                        min_samples=100))["latency"]  # fmt: skip
    assert r.p_value is not None and r.p_value <= 0.02  # slower beyond the band ...
    assert r.verdict == "pass"  # ... but p95 ratio ~1.08 <= 1.2
    assert "p95 ratio within" in r.detail


def test_latency_slo_judges_the_canary_alone() -> None:
    checks = ChecksSpec(error_rate=None, latency=LatencyCheck(slo_p95_ms=500))
    empty = ArmData(errors=[], latencies_ms=[], outputs=[], scores=[])
    results = by_name(analyse(checks, arm(300, seed=10), empty, confidence=0.98, min_samples=100))
    assert results["latency"].verdict == "inconclusive"  # no stable arm to compare with
    slo = results["latency_slo"]  # p95 of a lognormal(400 ms, 0.35) is ~710 ms: far above 500 ms
    assert slo.verdict == "fail" and slo.canary is not None and slo.canary > 500
    fine = by_name(analyse(ChecksSpec(latency=LatencyCheck(slo_p95_ms=2000)), arm(300, seed=11), arm(300, seed=12),
                           confidence=0.98, min_samples=100))  # fmt: skip
    assert fine["latency_slo"].verdict == "pass"


def test_broken_json_answers_fail_json_validity() -> None:
    checks = ChecksSpec(error_rate=None, latency=None, json_validity=JsonValidityCheck())
    r = analyse(checks, arm(300, seed=13, json_valid=0.7), arm(900, seed=14), confidence=0.98, min_samples=100)[0]
    assert r.check == "json_validity" and r.verdict == "fail"
    assert r.canary is not None and r.stable is not None and r.canary < r.stable


def test_lower_feedback_scores_fail_feedback_score() -> None:
    checks = ChecksSpec(error_rate=None, latency=None, feedback_score=FeedbackScoreCheck())
    r = analyse(checks, arm(300, seed=15, score=0.5), arm(300, seed=16), confidence=0.98, min_samples=100)[0]
    assert r.verdict == "fail" and "Welch" in r.detail


def test_output_drift_fails_when_answers_differ_and_needs_an_embedder() -> None:
    checks = ChecksSpec(error_rate=None, latency=None, output_drift=OutputDriftCheck())
    canary = arm(300, seed=17, answers=("Sure! Here is the answer.", "Sure, the answer is billing."))
    stable = arm(300, seed=18)
    r = analyse(checks, canary, stable, confidence=0.98, min_samples=100, embedder=KeywordEmbedder())[0]
    assert r.verdict == "fail" and r.canary is not None and r.canary > 0.9
    blind = analyse(checks, canary, stable, confidence=0.98, min_samples=100)[0]
    assert blind.verdict == "inconclusive" and blind.p_value is None and "no embedder" in blind.detail


def test_no_verdict_below_the_minimum_sample() -> None:
    bad = arm(60, seed=19, error=0.5, latency_x=3.0, json_valid=0.1, score=0.1)
    results = analyse(ALL, bad, arm(60, seed=20), confidence=0.98, min_samples=100, embedder=KeywordEmbedder())
    assert [r.verdict for r in results] == ["inconclusive"] * 5
    assert all(r.p_value is None and "minimum sample" in r.detail for r in results)


def test_a_check_with_its_own_larger_minimum_waits_for_it() -> None:
    checks = ChecksSpec(error_rate=None, latency=None, feedback_score=FeedbackScoreCheck(min_samples=500))
    r = analyse(checks, arm(300, seed=21, score=0.2), arm(300, seed=22), confidence=0.98, min_samples=100)[0]
    assert r.verdict == "inconclusive" and "500 scores" in r.detail


def test_check_results_round_trip_through_json() -> None:
    results = analyse(ALL, arm(300, seed=23, error=0.2), arm(300, seed=24), confidence=0.98, min_samples=100)
    for r in [*results, CheckResult("error_rate", "fail", 1, 1, 1.0, 0.0, math.inf, 0.0, "t")]:
        text = json.dumps(r.to_dict(), allow_nan=False)
        back = CheckResult.from_dict(json.loads(text))
        assert back.verdict == r.verdict and back.p_value == r.p_value and back.detail == r.detail


STEP = StepSpec(weight=10, min_duration="30s", min_samples=100, max_duration="10m")


def result(verdict: str, check: str = "error_rate") -> CheckResult:
    return CheckResult(check, verdict, 100, 100, None, None, None, 0.01 if verdict == "fail" else None, "")  # type: ignore[arg-type]


def test_step_fails_as_soon_as_a_check_fails_at_the_minimum_sample() -> None:
    failing = [result("pass"), result("fail", "latency")]
    assert step_verdict(failing, elapsed_s=5, step=STEP, canary_n=100, stable_n=900) == "fail"
    # below the minimum sample there is no verdict, even a failing one
    assert step_verdict(failing, elapsed_s=5, step=STEP, canary_n=99, stable_n=900) is None
    assert step_verdict(failing, elapsed_s=5, step=STEP, canary_n=500, stable_n=40) is None


def test_step_passes_after_min_duration_with_the_minimum_sample() -> None:
    ok = [result("pass"), result("inconclusive", "feedback_score")]  # an inconclusive check does not block
    assert step_verdict(ok, elapsed_s=29, step=STEP, canary_n=500, stable_n=5000) is None
    assert step_verdict(ok, elapsed_s=30, step=STEP, canary_n=500, stable_n=5000) == "pass"
    assert step_verdict(ok, elapsed_s=300, step=STEP, canary_n=50, stable_n=5000) is None


def test_step_is_inconclusive_at_max_duration_without_the_minimum_sample() -> None:
    assert step_verdict([result("pass")], elapsed_s=600, step=STEP, canary_n=99, stable_n=5000) == "inconclusive"


def test_at_weight_100_only_the_canary_needs_the_minimum_sample() -> None:
    full = STEP.model_copy(update={"weight": 100})
    assert step_verdict([result("inconclusive")], elapsed_s=30, step=full, canary_n=100, stable_n=0) == "pass"
    assert step_verdict([result("fail", "latency_slo")], elapsed_s=1, step=full, canary_n=100, stable_n=0) == "fail"


@pytest.mark.parametrize("slo", [None, 800.0])
def test_default_checks_and_the_slo_check_order(slo: float | None) -> None:
    checks = ChecksSpec(latency=LatencyCheck(slo_p95_ms=slo))
    names = [r.check for r in analyse(checks, arm(200, seed=25), arm(200, seed=26), confidence=0.98, min_samples=100)]
    assert names == (["error_rate", "latency"] if slo is None else ["error_rate", "latency", "latency_slo"])
