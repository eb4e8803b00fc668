"""Statistics of canary analysis: anytime-valid one-sided tests of "the canary is worse beyond a tolerance".

A rollout looks at its checks again and again (every ``interval_s``) and stops at the first failure, so a
fixed-sample p-value read at every look would abort good canaries far more often than ``alpha`` says. Every
test here therefore reports an **always-valid p-value** (Johari, Pekelis, Walsh 2017, "Peeking at A/B tests:
why it matters, and what to do about it", KDD; Johari et al. 2022, Operations Research 70(3)): ``p_n`` with
``P(exists n: p_n <= alpha) <= alpha`` under the null, however often and whenever one looks. It comes from a
**normal-mixture sequential probability ratio test** (mSPRT; Robbins 1970) on an asymptotically normal estimate
``x`` (minus its null value) with variance ``V = se**2``. The mixture here is the one-sided one (a half-normal
``N(0, tau**2)`` over harmful effects only; Howard, Ramdas, McAuliffe, Sekhon 2021, "Time-uniform, nonparametric,
nonasymptotic confidence sequences", Annals of Statistics 49(2), the one-sided normal mixture boundary):

    Lambda = 2 / sqrt(1 + r) * exp(z**2 * r / (2 (1 + r))) * Phi(z * sqrt(r / (1 + r))),   z = x / se, r = tau**2 / V

and ``p = min(1, 1 / Lambda)``; by Ville's inequality ``1 / Lambda`` is an anytime-valid p-value for the
composite null "effect <= null value" (it is a nonnegative supermartingale there). An estimate on the good side
gives ``Lambda < 1``, so ``p = 1``. For estimates that are only asymptotically normal (proportions, U
statistics, Welch means) the guarantee is asymptotic, as in Johari et al. and Waudby-Smith et al. (2024,
"Time-uniform central limit theory and asymptotic confidence sequences", Annals of Statistics 52(6)).

**The mixing scale ``tau``.** The boundary is tightest where ``r = tau**2 / V`` is about 10, i.e. at the sample
size where the standard error is about ``tau / 3``; it always costs a larger z than a single fixed-sample test
(at alpha = 0.02: z of about 3.1 instead of 2.05). So ``tau`` is set to the size of regression a canary must
catch within a few hundred requests, in each estimate's own units (the defaults below): 5 points for
rates (errors, invalid JSON, slow requests), 0.1 on the probability-of-superiority scale of Mann-Whitney (a
latency x1.3 with lognormal sigma 0.35 is 0.2) and on the AUC scale, 0.15 for feedback scores in [0, 1].
A tau far too small never rejects; far too large needs a larger z at small samples. Measured on these
effects (the sample at which the expected estimate first reaches p <= 0.02): a third of the default needs up
to 1.5x the sample, three times the default up to 1.2x.

Pure functions over numpy/scipy: no I/O, no registry, no web framework.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats
from scipy.special import log_ndtr, ndtr

TAU_RATE = 0.05  # mixing scale of a difference of rates (5 percentage points)
TAU_SUPERIORITY = 0.1  # of P(canary > stable) - 1/2 (Mann-Whitney) and of a classifier's AUC
TAU_SCORE = 0.15  # of a difference of mean feedback scores (scores in [0, 1])
MAX_SAMPLE = 2000  # values per arm a latency comparison reads (seeded subsample): a look stays ~ms


@dataclass(frozen=True)
class SequentialTest:
    """One look of a one-sided test of ``effect > null``: ``x = estimate - null``, ``z = x / se``."""

    estimate: float
    null: float
    se: float
    z: float
    p_value: float  # always-valid (mSPRT)
    fixed_p: float  # the fixed-sample one-sided normal p of the same look, for information


def msprt_p_value(x: float, se: float, tau: float) -> float:
    """Always-valid one-sided p-value of an estimate ``x`` (already minus its null value) with standard error
    ``se``, half-normal mixture of scale ``tau`` over harmful (positive) effects; 1 on the good side."""
    if not tau > 0:
        raise ValueError("tau must be positive")
    if not se > 0 or not math.isfinite(se):
        return 0.0 if x > 0 and se == 0 else 1.0
    z = x / se
    r = (tau / se) ** 2
    shrink = r / (1.0 + r)
    log_lambda = math.log(2.0) - 0.5 * math.log1p(r) + 0.5 * z * z * shrink + float(log_ndtr(z * math.sqrt(shrink)))
    return 1.0 if log_lambda <= 0 else math.exp(-log_lambda)


def normal_test(estimate: float, se: float, *, null: float = 0.0, tau: float) -> SequentialTest:
    """The mSPRT of ``estimate > null`` (see :func:`msprt_p_value`) with the matching fixed-sample p."""
    x = estimate - null
    z = x / se if se > 0 else math.copysign(math.inf, x) if x else 0.0
    return SequentialTest(
        estimate=estimate,
        null=null,
        se=se,
        z=z,
        p_value=msprt_p_value(x, se, tau),
        fixed_p=float(ndtr(-z)),
    )


# -- rates --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateComparison:
    canary_rate: float | None  # events / n (None: no requests)
    stable_rate: float | None
    test: SequentialTest  # Agresti-Caffo difference canary - stable, null = the tolerated increase
    fisher_p: float  # Fisher's exact one-sided p (odds ratio > 1, no tolerance), for information


def rate_increase(
    canary_events: int, canary_n: int, stable_events: int, stable_n: int, *, margin: float, tau: float = TAU_RATE
) -> RateComparison:
    """Is the canary's event rate (errors, invalid answers) above the stable's by more than ``margin``?

    The difference uses Agresti and Caffo's (2000) adjustment (one event and one non-event added to each arm),
    which keeps the standard error positive at 0 events and makes the normal approximation hold at small n."""
    pc = (canary_events + 1) / (canary_n + 2)
    ps = (stable_events + 1) / (stable_n + 2)
    se = math.sqrt(pc * (1 - pc) / (canary_n + 2) + ps * (1 - ps) / (stable_n + 2))
    table = [[canary_events, canary_n - canary_events], [stable_events, stable_n - stable_events]]
    fisher_p = float(stats.fisher_exact(table, alternative="greater").pvalue) if canary_n and stable_n else 1.0
    return RateComparison(
        canary_rate=canary_events / canary_n if canary_n else None,
        stable_rate=stable_events / stable_n if stable_n else None,
        test=normal_test(pc - ps, se, null=margin, tau=tau),
        fisher_p=fisher_p,
    )


def share_above(count: int, n: int, *, share: float, tau: float = TAU_RATE) -> tuple[SequentialTest, float]:
    """Is the share ``count / n`` above ``share`` (e.g. the share of requests slower than an SLO above 5%)?
    Score test (the variance at the null share); also the exact binomial one-sided p for information."""
    if n <= 0:
        return normal_test(0.0, math.inf, null=0.0, tau=tau), 1.0
    se = math.sqrt(share * (1 - share) / n)
    exact = float(stats.binomtest(count, n, share, alternative="greater").pvalue)
    return normal_test(count / n, se, null=share, tau=tau), exact


# -- latency: Mann-Whitney with Kayenta's tolerance band ----------------------------------------------


@dataclass(frozen=True)
class ShiftComparison:
    n_canary: int  # values compared (after subsampling)
    n_stable: int
    hodges_lehmann: float  # median of canary - stable differences (the shift estimate)
    null_shift: float  # tolerance x |HL|: the shift tolerated (Kayenta's band)
    u: float  # scipy's U of (canary - null_shift) vs stable
    fixed_p: float  # scipy's one-sided Mann-Whitney p of the same comparison
    test: SequentialTest  # mSPRT on P(canary - null_shift > stable) - 1/2
    lower_bound: float  # anytime-valid lower confidence bound on the shift (at level alpha)


def subsample_values(values: Sequence[float], size: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``size`` of ``values`` (drawn without replacement when there are more)."""
    arr = np.asarray(values, dtype=float)
    if len(arr) <= size:
        return arr
    return rng.choice(arr, size=size, replace=False)


def _superiority_variance(n1: int, n2: int) -> float:
    """Null variance of U / (n1 n2) (no ties)."""
    return (n1 + n2 + 1) / (12.0 * n1 * n2)


def _u_at(canary: np.ndarray, stable_sorted: np.ndarray, shift: float) -> float:
    """Mann-Whitney U of ``canary - shift`` vs the sorted stable values (ties count one half)."""
    x = canary - shift
    left = np.searchsorted(stable_sorted, x, side="left")
    right = np.searchsorted(stable_sorted, x, side="right")
    return float(np.sum(left + right)) / 2.0


def _root(f: Callable[[float], float], lo: float, hi: float, scale: float) -> float:
    """The crossing of a monotone step function (``f(lo) < 0 < f(hi)``) to 1e-5 of the data's range."""
    return float(optimize.brentq(f, lo, hi, xtol=max(scale, 1e-12) * 1e-5))


def shift_increase(
    canary: Sequence[float],
    stable: Sequence[float],
    *,
    tolerance: float,
    alpha: float,
    tau: float = TAU_SUPERIORITY,
    max_sample: int = MAX_SAMPLE,
    seed: int = 0,
) -> ShiftComparison:
    """Is the canary shifted up beyond Kayenta's band? Null: shift <= ``tolerance`` x |Hodges-Lehmann shift|.

    U (scipy), the always-valid p of the probability-of-superiority estimate ``U / (n1 n2) - 1/2`` of
    ``canary - null_shift`` vs stable, and the anytime-valid lower confidence bound on the shift (the
    smallest shift whose always-valid p exceeds ``alpha``: the shifts not rejected form a confidence
    sequence, so ``p_value <= alpha`` exactly when ``lower_bound > null_shift``, Kayenta's failure). Each arm is subsampled to
    ``max_sample`` values with a seeded rng, so one look stays a few milliseconds."""
    rng = np.random.default_rng(seed)
    c = np.sort(subsample_values(canary, max_sample, rng))
    s = np.sort(subsample_values(stable, max_sample, rng))
    n1, n2 = len(c), len(s)
    if n1 == 0 or n2 == 0:
        raise ValueError("both arms need values")
    pairs = float(n1 * n2)
    se = math.sqrt(_superiority_variance(n1, n2))
    lo, hi = float(c.min() - s[-1]) - 1.0, float(c.max() - s[0]) + 1.0
    scale = float(np.ptp(np.concatenate([c, s]))) or 1.0
    hl = _root(lambda d: pairs / 2.0 - _u_at(c, s, d), lo, hi, scale)
    null_shift = tolerance * abs(hl)
    mw = stats.mannwhitneyu(c - null_shift, s, alternative="greater", method="asymptotic")
    u = float(mw.statistic)
    test = normal_test(u / pairs - 0.5, se, tau=tau)

    def log_p_over_alpha(d: float) -> float:  # increasing in d
        return math.log(max(msprt_p_value(_u_at(c, s, d) / pairs - 0.5, se, tau), 1e-300)) - math.log(alpha)

    bound = _root(log_p_over_alpha, lo, hi, scale) if log_p_over_alpha(lo) < 0 else lo
    return ShiftComparison(
        n_canary=n1,
        n_stable=n2,
        hodges_lehmann=hl,
        null_shift=null_shift,
        u=u,
        fixed_p=float(mw.pvalue),
        test=test,
        lower_bound=bound,
    )


# -- means and quantiles ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeanComparison:
    canary_mean: float
    stable_mean: float
    test: SequentialTest  # Welch: stable mean - canary mean, null = the tolerated decrease
    welch_p: float  # scipy's one-sided Welch t-test p of the same null, for information


def mean_decrease(
    canary: Sequence[float], stable: Sequence[float], *, margin: float, tau: float = TAU_SCORE
) -> MeanComparison:
    """Is the canary's mean below the stable's by more than ``margin``? (Welch difference of means.)"""
    c = np.asarray(canary, dtype=float)
    s = np.asarray(stable, dtype=float)
    if len(c) < 2 or len(s) < 2:
        raise ValueError("each arm needs at least two values")
    se = math.sqrt(float(np.var(c, ddof=1)) / len(c) + float(np.var(s, ddof=1)) / len(s))
    welch = stats.ttest_ind(c + margin, s, equal_var=False, alternative="less")
    welch_p = float(welch.pvalue)
    return MeanComparison(
        canary_mean=float(c.mean()),
        stable_mean=float(s.mean()),
        test=normal_test(float(s.mean() - c.mean()), se, null=margin, tau=tau),
        welch_p=welch_p if math.isfinite(welch_p) else 1.0,
    )


def auc_above(
    auc: float, n_positive: int, n_negative: int, *, max_auc: float, tau: float = TAU_SUPERIORITY
) -> SequentialTest:
    """Is a classifier's ROC AUC above ``max_auc``? Standard error of Hanley and McNeil (1982) at the AUC."""
    a = min(max(auc, 1e-6), 1 - 1e-6)
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n_positive - 1) * (q1 - a * a) + (n_negative - 1) * (q2 - a * a)) / (n_positive * n_negative)
    return normal_test(auc, math.sqrt(max(var, 0.0)), null=max_auc, tau=tau)


def p95(values: Sequence[float]) -> float | None:
    """The 95th percentile (numpy's linear interpolation); None for no values."""
    return float(np.percentile(np.asarray(values, dtype=float), 95)) if len(values) else None
