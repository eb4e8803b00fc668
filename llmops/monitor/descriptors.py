"""Text descriptors and output JSON fields, reference vs live (``input.*``, ``output.*``, ``field.NAME``).

Tests by sample size, as Evidently chooses them: below ``large_sample`` live rows a numeric descriptor
uses the two-sample Kolmogorov-Smirnov test and a categorical one chi-square (Fisher's exact test for a
2x2 table with an expected count under 5), drift when ``p < p_alert`` (warn below ``2 * p_alert``); from
``large_sample`` rows on, the normed Wasserstein distance (divided by the reference's standard
deviation) or the Jensen-Shannon distance, drift at ``>= distance_alert`` (warn from half of it).
The levels of the tests here are per signal; the runner then corrects a window's tests together
(:func:`llmops.monitor.multitest.correct_window`, Holm by default), so their levels there come from
adjusted p-values.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

from llmops.config.monitor import DescriptorsSpec
from llmops.monitor.levels import Level, SignalResult, insufficient, p_level

MISSING = "<missing>"
HISTOGRAM_BINS = 20


def length(text: str) -> float:
    return float(len(text))


def non_letter_share(text: str) -> float:
    """Share of the non-space characters that are not letters (0 for an empty text)."""
    chars = [c for c in text if not c.isspace()]
    return sum(not c.isalpha() for c in chars) / len(chars) if chars else 0.0


INVALID = object()  # parse_json's answer for a text that is not JSON (None is JSON's null)


def parse_json(text: str) -> Any:
    """The JSON value of ``text``, or the sentinel ``INVALID`` when it does not parse."""
    try:
        return json.loads(text)
    except ValueError:
        return INVALID


def json_valid(text: str) -> bool:
    return parse_json(text) is not INVALID


def field_value(text: str, name: str) -> str:
    """The output's JSON field ``name`` as a category (strings as they are, other values as JSON);
    :data:`MISSING` when the output is not a JSON object or lacks the field."""
    value = parse_json(text)
    if not isinstance(value, dict) or name not in value:
        return MISSING
    found = value[name]
    return found if isinstance(found, str) else json.dumps(found, sort_keys=True)


def refusal_matcher(patterns: Sequence[str]) -> Callable[[str], bool]:
    compiled = [re.compile(p, re.IGNORECASE) for p in patterns]
    return lambda text: any(p.search(text) for p in compiled)


def _level(drift: bool, warn: bool) -> Level:
    return "alert" if drift else "warn" if warn else "ok"


def compare_numeric(
    signal: str, reference: Sequence[float], live: Sequence[float], spec: DescriptorsSpec, *, target: str
) -> SignalResult:
    """KS test (small live samples) or normed Wasserstein distance (large ones), with shared-edge histograms."""
    if min(len(reference), len(live)) < spec.min_samples:
        return insufficient(signal, len(live), spec.min_samples, target=target)
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(live, dtype=float)
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins=HISTOGRAM_BINS)
    details: dict[str, Any] = {
        "bin_edges": edges.tolist(),
        "reference_histogram": np.histogram(ref, bins=edges)[0].tolist(),
        "live_histogram": np.histogram(cur, bins=edges)[0].tolist(),
        "reference_mean": float(ref.mean()),
        "live_mean": float(cur.mean()),
        "reference_samples": len(ref),
    }
    if len(cur) < spec.large_sample:
        result = stats.ks_2samp(ref, cur)
        p = float(result.pvalue)
        details["ks_statistic"] = float(result.statistic)
        level = p_level(p, spec.p_alert)
        return SignalResult(
            signal, level, p, spec.p_alert, len(cur), statistic="ks_p", p_value=p, target=target, details=details
        )
    distance = float(stats.wasserstein_distance(ref, cur))
    scale = float(ref.std())
    normed = distance / scale if scale > 0 else (0.0 if distance == 0 else 1.0)
    details["wasserstein"] = distance
    level = _level(normed >= spec.distance_alert, normed >= 0.5 * spec.distance_alert)
    return SignalResult(
        signal, level, normed, spec.distance_alert, len(cur), statistic="wasserstein_normed", target=target,
        details=details,
    )  # fmt: skip


def compare_categorical(
    signal: str, reference: Sequence[str], live: Sequence[str], spec: DescriptorsSpec, *, target: str
) -> SignalResult:
    """Chi-square / Fisher (small live samples) or Jensen-Shannon distance (large ones) on category counts."""
    if min(len(reference), len(live)) < spec.min_samples:
        return insufficient(signal, len(live), spec.min_samples, target=target)
    ref_counts, live_counts = Counter(reference), Counter(live)
    categories = sorted(set(ref_counts) | set(live_counts))
    table = np.array([[ref_counts[c] for c in categories], [live_counts[c] for c in categories]], dtype=float)
    details: dict[str, Any] = {
        "categories": categories,
        "reference_counts": {c: ref_counts[c] for c in categories},
        "live_counts": {c: live_counts[c] for c in categories},
        "reference_samples": len(reference),
    }
    if len(live) < spec.large_sample:
        p, test = _table_p_value(table)
        details["test"] = test
        level = p_level(p, spec.p_alert)
        return SignalResult(
            signal, level, p, spec.p_alert, len(live), statistic=f"{test}_p", p_value=p, target=target,
            details=details,
        )  # fmt: skip
    distance = float(jensenshannon(table[0] / table[0].sum(), table[1] / table[1].sum()))
    level = _level(distance >= spec.distance_alert, distance >= 0.5 * spec.distance_alert)
    return SignalResult(
        signal, level, distance, spec.distance_alert, len(live), statistic="js_distance", target=target,
        details=details,
    )  # fmt: skip


def _table_p_value(table: np.ndarray) -> tuple[float, str]:
    """p-value of homogeneity of the 2xk count ``table`` (1.0 when it holds a single category)."""
    if table.shape[1] < 2:
        return 1.0, "chi_square"
    if table.shape[1] == 2:
        expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
        if expected.min() < 5:
            return float(stats.fisher_exact(table).pvalue), "fisher"
    return float(stats.chi2_contingency(table).pvalue), "chi_square"


def compare_rate(
    signal: str, reference: Sequence[bool], live: Sequence[bool], spec: DescriptorsSpec, *, target: str
) -> SignalResult:
    """A binary descriptor (JSON valid, empty, refusal) as a two-category distribution; details add the rates."""
    result = compare_categorical(
        signal, ["true" if v else "false" for v in reference], ["true" if v else "false" for v in live], spec,
        target=target,
    )  # fmt: skip
    if result.level == "insufficient_data":
        return result
    details = dict(result.details)
    details["reference_rate"] = float(np.mean(reference))
    details["live_rate"] = float(np.mean(live))
    return SignalResult(
        result.signal, result.level, result.value, result.threshold, result.samples, statistic=result.statistic,
        p_value=result.p_value, target=target, details=details,
    )  # fmt: skip


def text_descriptors(
    prefix: str, reference: Sequence[str], live: Sequence[str], spec: DescriptorsSpec, *, target: str
) -> list[SignalResult]:
    """``PREFIX.length`` and ``PREFIX.non_letter_share``."""
    return [
        compare_numeric(f"{prefix}.{name}", [fn(t) for t in reference], [fn(t) for t in live], spec, target=target)
        for name, fn in (("length", length), ("non_letter_share", non_letter_share))
    ]


def output_descriptors(
    reference: Sequence[str], live: Sequence[str], spec: DescriptorsSpec, *, target: str
) -> list[SignalResult]:
    """``output.length``, ``output.non_letter_share``, ``output.json_valid``, ``output.empty``,
    ``output.refusal`` and ``field.NAME`` for each of ``spec.fields``."""
    results = text_descriptors("output", reference, live, spec, target=target)
    refusal = refusal_matcher(spec.refusal_patterns)
    rates: tuple[tuple[str, Callable[[str], bool]], ...] = (
        ("json_valid", json_valid),
        ("empty", lambda t: not t.strip()),
        ("refusal", refusal),
    )
    for name, fn in rates:
        ref_flags = [fn(t) for t in reference]
        live_flags = [fn(t) for t in live]
        results.append(compare_rate(f"output.{name}", ref_flags, live_flags, spec, target=target))
    for field in spec.fields:
        ref_values = [field_value(t, field) for t in reference]
        live_values = [field_value(t, field) for t in live]
        results.append(compare_categorical(f"field.{field}", ref_values, live_values, spec, target=target))
    return results
