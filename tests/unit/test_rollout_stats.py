"""Statistics of canary analysis: the anytime-valid mSPRT p-value, rates, Mann-Whitney shift, Welch, AUC, p95."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from llmops.rollout import stats

ALPHA = 0.02


def test_msprt_is_one_on_the_good_side_and_decreases_with_evidence() -> None:
    assert stats.msprt_p_value(-0.05, 0.01, 0.05) == 1.0
    assert stats.msprt_p_value(0.0, 0.01, 0.05) == 1.0
    ps = [stats.msprt_p_value(x, 0.01, 0.05) for x in np.linspace(0.0, 0.08, 30)]
    assert all(b <= a for a, b in zip(ps, ps[1:], strict=False))
    assert ps[-1] < 1e-6  # z = 8


@pytest.mark.parametrize("tau", [0.01, 0.05, 0.2])
@pytest.mark.parametrize("se", [0.002, 0.01, 0.05])
def test_always_valid_p_is_never_below_the_fixed_sample_p_of_the_same_look(tau: float, se: float) -> None:
    for z in np.linspace(-3, 12, 151):
        test = stats.normal_test(z * se, se, tau=tau)
        assert test.fixed_p == pytest.approx(sps.norm.sf(z), rel=1e-9, abs=1e-300)
        assert test.p_value >= test.fixed_p


def test_repeated_looks_keep_the_false_alarm_rate_below_alpha_where_fixed_p_values_do_not() -> None:
    """Under the null, looking 60 times at a growing sample: the always-valid p crosses alpha in at most ~alpha
    of the runs; the fixed-sample p read at every look crosses it several times as often."""
    rng = np.random.default_rng(7)
    runs, looks, per_look, alpha = 1500, 60, 20, 0.05
    sums = np.cumsum(rng.normal(0.0, 1.0, (runs, looks * per_look)), axis=1)[:, per_look - 1 :: per_look]
    n = per_look * np.arange(1, looks + 1)
    means, ses = sums / n, 1.0 / np.sqrt(n)
    crossed_av = crossed_fixed = 0
    for row in range(runs):
        tests = [stats.normal_test(float(means[row, k]), float(ses[k]), tau=0.3) for k in range(looks)]
        crossed_av += any(t.p_value <= alpha for t in tests)
        crossed_fixed += any(t.fixed_p <= alpha for t in tests)
    assert crossed_av / runs <= alpha + 0.01
    assert crossed_fixed / runs > 3 * alpha


def test_rate_increase_against_references() -> None:
    cmp = stats.rate_increase(12, 200, 10, 1000, margin=0.01)
    pc, ps = 13 / 202, 11 / 1002  # Agresti-Caffo: one event and one non-event added per arm
    assert cmp.test.estimate == pytest.approx(pc - ps)
    assert cmp.test.se == pytest.approx(math.sqrt(pc * (1 - pc) / 202 + ps * (1 - ps) / 1002))
    assert cmp.canary_rate == pytest.approx(0.06) and cmp.stable_rate == pytest.approx(0.01)
    fisher = sps.fisher_exact([[12, 188], [10, 990]], alternative="greater").pvalue
    assert cmp.fisher_p == pytest.approx(fisher)
    assert cmp.test.p_value >= cmp.test.fixed_p


def test_rate_increase_detects_a_bad_canary_and_tolerates_the_margin() -> None:
    assert stats.rate_increase(60, 1000, 10, 1000, margin=0.01).test.p_value <= ALPHA  # 6% vs 1%
    assert stats.rate_increase(10, 1000, 10, 1000, margin=0.01).test.p_value == 1.0  # equal
    assert stats.rate_increase(0, 100, 0, 100, margin=0.0).test.p_value == 1.0  # no events at all
    # +1.5 points with a 2-point tolerance: never a failure, however large the sample
    assert stats.rate_increase(2500, 100_000, 1000, 100_000, margin=0.02).test.p_value == 1.0


def test_share_above_the_slo_share() -> None:
    slow, exact = stats.share_above(30, 200, share=0.05)  # 15% slower than the SLO
    assert slow.p_value <= ALPHA
    assert exact == pytest.approx(sps.binomtest(30, 200, 0.05, alternative="greater").pvalue)
    assert stats.share_above(8, 200, share=0.05)[0].p_value > ALPHA  # 4%


def _lognormal(rng: np.random.Generator, n: int, factor: float = 1.0) -> np.ndarray:
    return rng.lognormal(math.log(400), 0.35, n) * factor


def test_shift_u_and_hodges_lehmann_match_scipy_and_the_pairwise_median() -> None:
    rng = np.random.default_rng(1)
    canary, stable = _lognormal(rng, 150, 1.2), _lognormal(rng, 300)
    cmp = stats.shift_increase(canary, stable, tolerance=0.0, alpha=ALPHA)
    reference = sps.mannwhitneyu(canary, stable, alternative="greater")
    assert cmp.u == pytest.approx(reference.statistic)
    assert cmp.fixed_p == pytest.approx(reference.pvalue, rel=1e-3)
    assert cmp.hodges_lehmann == pytest.approx(np.median(np.subtract.outer(canary, stable)), abs=0.05)
    assert cmp.test.p_value >= cmp.fixed_p * 0.999


def test_a_shifted_sample_is_detected_and_an_equal_one_is_not() -> None:
    rng = np.random.default_rng(2)
    slow = stats.shift_increase(_lognormal(rng, 200, 1.3), _lognormal(rng, 1000), tolerance=0.25, alpha=ALPHA)
    assert slow.hodges_lehmann > 0 and slow.null_shift == pytest.approx(0.25 * abs(slow.hodges_lehmann))
    assert slow.test.p_value <= ALPHA
    assert slow.lower_bound > slow.null_shift  # Kayenta's failure: the bound beyond the band
    same = stats.shift_increase(_lognormal(rng, 200), _lognormal(rng, 1000), tolerance=0.25, alpha=ALPHA)
    assert same.test.p_value > ALPHA
    assert same.lower_bound <= same.null_shift


def test_the_lower_bound_is_where_the_always_valid_p_crosses_alpha() -> None:
    rng = np.random.default_rng(3)
    for factor in (1.0, 1.1, 1.3, 1.6):
        canary, stable = _lognormal(rng, 300, factor), _lognormal(rng, 600)
        cmp = stats.shift_increase(canary, stable, tolerance=0.25, alpha=ALPHA)
        assert (cmp.test.p_value <= ALPHA) == (cmp.lower_bound > cmp.null_shift)
        assert cmp.lower_bound <= cmp.hodges_lehmann


def test_large_arms_are_subsampled_with_a_seeded_rng() -> None:
    rng = np.random.default_rng(4)
    canary, stable = _lognormal(rng, 9000), _lognormal(rng, 20_000)
    first = stats.shift_increase(canary, stable, tolerance=0.25, alpha=ALPHA, max_sample=2000, seed=5)
    again = stats.shift_increase(canary, stable, tolerance=0.25, alpha=ALPHA, max_sample=2000, seed=5)
    assert (first.n_canary, first.n_stable) == (2000, 2000)
    assert first == again


def test_mean_decrease_is_welch() -> None:
    rng = np.random.default_rng(6)
    canary, stable = rng.uniform(0.3, 0.9, 80), rng.uniform(0.6, 1.0, 120)
    cmp = stats.mean_decrease(canary, stable, margin=0.1)
    se = math.sqrt(np.var(canary, ddof=1) / 80 + np.var(stable, ddof=1) / 120)
    assert cmp.test.se == pytest.approx(se)
    assert cmp.test.estimate == pytest.approx(stable.mean() - canary.mean())
    welch = sps.ttest_ind(canary + 0.1, stable, equal_var=False, alternative="less").pvalue
    assert cmp.welch_p == pytest.approx(welch)
    assert cmp.test.p_value <= ALPHA  # a drop of ~0.2 with a tolerance of 0.1
    same = stats.mean_decrease(stable[:60], stable[60:], margin=0.1)
    assert same.test.p_value > ALPHA


def test_auc_standard_error_is_hanley_mcneil() -> None:
    # at AUC 0.5 the Hanley-McNeil variance is the Mann-Whitney null variance (n1 + n2 + 1) / (12 n1 n2)
    test = stats.auc_above(0.5, 100, 100, max_auc=0.75)
    assert test.se == pytest.approx(math.sqrt(201 / 120_000))
    assert test.p_value == 1.0
    assert stats.auc_above(0.97, 200, 200, max_auc=0.75).p_value <= ALPHA


def test_p95() -> None:
    values = list(range(1, 101))
    assert stats.p95(values) == pytest.approx(np.percentile(values, 95))
    assert stats.p95([]) is None
