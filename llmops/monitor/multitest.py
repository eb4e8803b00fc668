"""Family-wise correction of one window's p-value signals: :func:`correct_window` (Holm-Bonferroni).

A window runs about ten descriptor tests (KS, chi-square, Fisher: ``input.*``, ``output.*``,
``field.NAME``), each at ``p_alert``. Taken one by one, some test falls under 0.05 by chance in a large
share of calm windows (22% with nine tests, 2.5% with Holm: ``tests/unit/test_monitor_multitest.py``), and
a route's window alerts when any signal does. With ``holm`` the tests of a window are one family: each
level comes from its Holm-adjusted p-value, so the chance that any of them alerts on traffic drawn like the
reference is at most ``p_alert`` (the largest one, when they differ), whatever the dependence between them.

The family is every signal of the window decided by a p-value alone (a statistic named ``*_p``, see
:class:`~llmops.monitor.levels.SignalResult`): the route-wide input descriptors and every target's output
descriptors, because alert rules and the route's level read a window as a whole. Other signals keep their
rules: distances (large samples), quality and latency bounds, and embedding drift, whose level needs the
domain classifier's AUC and the MMD test to agree (an MMD permutation p-value is at least
``1 / (1 + permutations)``, too coarse to survive a dozen-fold adjustment).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from llmops.config.monitor import Correction
from llmops.monitor.levels import SignalResult, p_level


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the order given: the i-th smallest times ``m - i + 1`` (i from 1),
    made non-decreasing and capped at 1; a NaN counts as 1. As statsmodels' ``multipletests(method="holm")``."""
    m = len(p_values)
    raw = [1.0 if math.isnan(p) else p for p in p_values]
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=raw.__getitem__)):
        running = max(running, min(1.0, (m - rank) * raw[i]))
        adjusted[i] = running
    return adjusted


def correct_window(results: Sequence[SignalResult], method: Correction) -> list[SignalResult]:
    """``results`` of one window with each p-value signal corrected by ``method`` over the window's family.

    A corrected signal keeps its raw ``p_value``; ``p_value_adjusted`` and ``value`` are the adjusted p-value,
    its level is :func:`~llmops.monitor.levels.p_level` of it against its ``threshold``, ``correction`` is
    ``method`` and ``details["family_tests"]`` the family's size. With ``none`` the adjusted p-value is the raw
    one. Other results are returned as they are; so is the order. Correcting twice gives the same results.
    """
    family = [
        (i, r.p_value, r.threshold)
        for i, r in enumerate(results)
        if r.statistic.endswith("_p") and r.p_value is not None and r.threshold is not None
    ]
    raw = [p for _, p, _ in family]
    adjusted = holm(raw) if method == "holm" else raw
    out = list(results)
    for (i, _, alpha), p in zip(family, adjusted, strict=True):
        r = results[i]
        details = {**r.details, "family_tests": len(family)}
        out[i] = replace(r, level=p_level(p, alpha), value=p, p_value_adjusted=p, correction=method, details=details)
    return out
