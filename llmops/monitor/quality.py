"""Live quality on captured outputs and feedback (``quality.*``), each against a minimum :class:`Bound`.

``quality.json_valid`` and ``quality.schema`` (when ``json_schema`` is set) are reference-free metrics
on every captured output; ``quality.exact_match`` compares answers with feedback corrections (parsed
JSON when both sides parse, else the stripped texts); ``quality.feedback_score`` is the mean score.
A signal whose bound is None is reported as information (level ok, threshold None).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jsonschema

from llmops.config.monitor import Bound, QualitySpec
from llmops.monitor.descriptors import INVALID, parse_json
from llmops.monitor.levels import Level, SignalResult, insufficient


def below_bound(value: float, bound: Bound | None) -> tuple[Level, float | None]:
    """The level of ``value`` against a minimum bound, and the threshold to report (alert, else warn)."""
    if bound is None:
        return "ok", None
    if bound.alert is not None and value < bound.alert:
        level: Level = "alert"
    elif bound.warn is not None and value < bound.warn:
        level = "warn"
    else:
        level = "ok"
    return level, bound.alert if bound.alert is not None else bound.warn


def _rate_signal(
    signal: str, hits: Sequence[bool], bound: Bound | None, minimum: int, target: str, statistic: str = "rate"
) -> SignalResult:
    if len(hits) < minimum:
        return insufficient(signal, len(hits), minimum, target=target)
    value = sum(hits) / len(hits)
    level, threshold = below_bound(value, bound)
    details: dict[str, Any] = {"hits": sum(hits), "warn": bound.warn if bound else None}
    return SignalResult(signal, level, value, threshold, len(hits), statistic=statistic, target=target, details=details)


def answers_match(output: str, correction: str) -> bool:
    """Exact match: equal JSON values when both parse, else equal stripped texts."""
    got, want = parse_json(output), parse_json(correction)
    if got is not INVALID and want is not INVALID:
        return bool(got == want)
    return output.strip() == correction.strip()


def quality_signals(
    outputs: Sequence[str],
    corrections: Sequence[tuple[str, str]],
    feedback_scores: Sequence[float],
    spec: QualitySpec,
    *,
    target: str,
) -> list[SignalResult]:
    """``quality.json_valid``, ``quality.schema`` (when a schema is set), ``quality.exact_match`` and
    ``quality.feedback_score`` for one window and target."""
    parsed = [parse_json(t) for t in outputs]
    results = [
        _rate_signal("quality.json_valid", [p is not INVALID for p in parsed], spec.json_valid, spec.min_samples,
                     target),
    ]  # fmt: skip
    if spec.json_schema is not None:
        validator_cls = jsonschema.validators.validator_for(spec.json_schema)
        validator = validator_cls(spec.json_schema)
        valid = [p is not INVALID and validator.is_valid(p) for p in parsed]
        results.append(_rate_signal("quality.schema", valid, spec.schema_valid, spec.min_samples, target))
    matches = [answers_match(out, fix) for out, fix in corrections]
    results.append(_rate_signal("quality.exact_match", matches, spec.exact_match, spec.min_samples, target))
    if len(feedback_scores) < spec.min_samples:
        results.append(insufficient("quality.feedback_score", len(feedback_scores), spec.min_samples, target=target))
    else:
        mean = float(sum(feedback_scores) / len(feedback_scores))
        level, threshold = below_bound(mean, spec.feedback_score)
        results.append(
            SignalResult(
                "quality.feedback_score", level, mean, threshold, len(feedback_scores), statistic="mean_score",
                target=target,
            )
        )  # fmt: skip
    return results
