"""Latency and errors per target against SLO maxima (``latency.*``, ``errors.rate``).

Latency percentiles cover every request of the window; TTFT covers the streamed ones the caller passes.
The error rate counts server-side failures (status >= 500: engine errors, timeouts, unavailable);
4xx answers are the client's errors and 499 (client went away) is not a failure of the target.
A signal whose bound is None is reported as information (level ok, threshold None).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from llmops.config.monitor import Bound, LatencySpec
from llmops.monitor.levels import Level, SignalResult, insufficient


def above_bound(value: float, bound: Bound | None) -> tuple[Level, float | None]:
    """The level of ``value`` against a maximum bound, and the threshold to report (alert, else warn)."""
    if bound is None:
        return "ok", None
    if bound.alert is not None and value > bound.alert:
        level: Level = "alert"
    elif bound.warn is not None and value > bound.warn:
        level = "warn"
    else:
        level = "ok"
    return level, bound.alert if bound.alert is not None else bound.warn


def _bounded(signal: str, value: float, samples: int, bound: Bound | None, statistic: str, target: str) -> SignalResult:
    level, threshold = above_bound(value, bound)
    details = {"warn": bound.warn if bound else None, "alert": bound.alert if bound else None}
    return SignalResult(signal, level, value, threshold, samples, statistic=statistic, target=target, details=details)


def latency_signals(
    latencies_ms: Sequence[float],
    ttfts_ms: Sequence[float],
    statuses: Sequence[int],
    spec: LatencySpec,
    *,
    target: str,
) -> list[SignalResult]:
    """``latency.p50_ms``, ``latency.p95_ms``, ``latency.p99_ms``, ``latency.ttft_p95_ms`` and ``errors.rate``."""
    results: list[SignalResult] = []
    lat = np.asarray(latencies_ms, dtype=float)
    for q, bound in ((50, spec.p50_ms), (95, spec.p95_ms), (99, spec.p99_ms)):
        signal = f"latency.p{q}_ms"
        if len(lat) < spec.min_samples:
            results.append(insufficient(signal, len(lat), spec.min_samples, target=target))
        else:
            results.append(_bounded(signal, float(np.percentile(lat, q)), len(lat), bound, f"p{q}_ms", target))
    if len(ttfts_ms) < spec.min_samples:
        results.append(insufficient("latency.ttft_p95_ms", len(ttfts_ms), spec.min_samples, target=target))
    else:
        value = float(np.percentile(np.asarray(ttfts_ms, dtype=float), 95))
        results.append(_bounded("latency.ttft_p95_ms", value, len(ttfts_ms), spec.ttft_p95_ms, "p95_ms", target))
    if len(statuses) < spec.min_samples:
        results.append(insufficient("errors.rate", len(statuses), spec.min_samples, target=target))
    else:
        failures = sum(1 for s in statuses if s >= 500)
        result = _bounded("errors.rate", failures / len(statuses), len(statuses), spec.error_rate, "rate", target)
        results.append(
            SignalResult(
                result.signal, result.level, result.value, result.threshold, result.samples,
                statistic=result.statistic, target=target, details={**result.details, "errors": failures},
            )
        )  # fmt: skip
    return results
