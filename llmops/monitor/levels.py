"""A signal's verdict: :class:`SignalResult`, the one type every monitoring signal reports.

Levels: ``ok``, ``warn``, ``alert``, or ``insufficient_data`` when the window holds fewer samples than
the signal's minimum (never ``ok`` then). Gauges export a level as a number (:data:`LEVEL_VALUES`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Level = Literal["ok", "warn", "alert", "insufficient_data"]

#: a level as a gauge value (insufficient data is below ok, so `max` over signals means "worst")
LEVEL_VALUES: Mapping[str, int] = {"insufficient_data": -1, "ok": 0, "warn": 1, "alert": 2}
ALL_TARGETS = "*"  # the target label of route-wide signals (input drift, input descriptors)


@dataclass(frozen=True)
class SignalResult:
    """One signal on one window: its value against its threshold, the samples it saw, and its level.

    ``statistic`` says what ``value`` is (``roc_auc``, ``ks_p``, ``js_distance``, ``p95_ms``, ``rate`` ...);
    ``p_value`` is set where a test produced one (raw, as the test gave it); ``details`` holds the other
    figures (JSON-able: numbers, strings, lists, dicts), e.g. the shuffled-label AUCs or the histograms a
    report plots. A statistic named ``*_p`` (``ks_p``, ``chi_square_p``, ``fisher_p``) marks a signal decided
    by its p-value alone: its level is :func:`p_level` of ``value`` against ``threshold``. Such signals of
    one window are corrected together (:mod:`~llmops.monitor.multitest`): ``correction`` names the method
    (``holm`` or ``none``), ``p_value_adjusted`` is the p-value after it, and ``value`` is that adjusted
    p-value, the one the level comes from; ``p_value`` stays the raw one.
    """

    signal: str
    level: Level
    value: float | None
    threshold: float | None
    samples: int
    statistic: str = ""
    p_value: float | None = None
    target: str = ALL_TARGETS
    details: Mapping[str, Any] = field(default_factory=dict)
    p_value_adjusted: float | None = None
    correction: str | None = None  # the family-wise correction p_value_adjusted comes from (None: not corrected)

    def as_dict(self) -> dict[str, Any]:
        return {
            "signal": self.signal,
            "target": self.target,
            "level": self.level,
            "value": self.value,
            "threshold": self.threshold,
            "samples": self.samples,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "p_value_adjusted": self.p_value_adjusted,
            "correction": self.correction,
            "details": dict(self.details),
        }


def insufficient(signal: str, samples: int, minimum: int, *, target: str = ALL_TARGETS) -> SignalResult:
    """The result of a signal whose window holds fewer than ``minimum`` samples."""
    return SignalResult(
        signal, "insufficient_data", None, None, samples, target=target, details={"min_samples": minimum}
    )


def p_level(p_value: float, alpha: float) -> Level:
    """The level of a signal decided by a p-value: ``alert`` below ``alpha``, ``warn`` below twice it, else ``ok``."""
    return "alert" if p_value < alpha else "warn" if p_value < 2 * alpha else "ok"


def worst(levels: list[Level]) -> Level:
    """The most severe of ``levels`` (``insufficient_data`` only when nothing else is there)."""
    return max(levels, key=lambda lv: LEVEL_VALUES[lv], default="insufficient_data")
