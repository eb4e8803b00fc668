"""Live quality (JSON validity, schema, exact match on corrections, feedback) and latency / error signals."""

from __future__ import annotations

import json

import pytest

from llmops.config.monitor import Bound, LatencySpec, QualitySpec
from llmops.monitor.latency import latency_signals
from llmops.monitor.quality import answers_match, quality_signals

SCHEMA = {
    "type": "object",
    "required": ["intent", "priority"],
    "properties": {"priority": {"enum": ["low", "medium", "high", "urgent"]}},
}


def _by_name(results: list) -> dict:  # type: ignore[type-arg]
    return {r.signal: r for r in results}


def test_json_validity_and_schema_against_their_minimum_bounds() -> None:
    good = json.dumps({"intent": "billing", "priority": "high"})
    off_schema = json.dumps({"intent": "billing", "priority": "whenever"})
    outputs = [good] * 94 + [off_schema] * 3 + ["not json"] * 3
    results = _by_name(quality_signals(outputs, [], [], QualitySpec(json_schema=SCHEMA), target="stable"))
    valid, schema = results["quality.json_valid"], results["quality.schema"]
    assert (valid.value, valid.level, valid.threshold) == (0.97, "warn", 0.95)  # warn below 0.98, alert below 0.95
    assert (schema.value, schema.level) == (0.94, "alert")
    assert "quality.schema" not in _by_name(quality_signals(outputs, [], [], QualitySpec(), target="stable"))


def test_exact_match_compares_parsed_json_then_stripped_text() -> None:
    assert answers_match('{"intent": "refund", "priority": "low"}', '{"priority":"low","intent":"refund"}')
    assert not answers_match('{"intent": "refund", "priority": "low"}', '{"intent":"refund","priority":"high"}')
    assert answers_match(" plain answer\n", "plain answer")
    right = ('{"intent":"refund","priority":"low"}', '{"priority": "low", "intent": "refund"}')
    wrong = ('{"intent":"refund","priority":"low"}', '{"intent":"refund","priority":"urgent"}')
    results = _by_name(quality_signals([], [right] * 16 + [wrong] * 4, [], QualitySpec(), target="canary"))
    match = results["quality.exact_match"]
    assert (match.value, match.level, match.samples, match.target) == (0.8, "alert", 20, "canary")
    few = _by_name(quality_signals([], [right] * 19, [], QualitySpec(), target="canary"))
    assert few["quality.exact_match"].level == "insufficient_data"


def test_feedback_score_is_information_without_a_bound_and_checked_with_one() -> None:
    scores = [0.5] * 30
    info = _by_name(quality_signals([], [], scores, QualitySpec(), target="stable"))["quality.feedback_score"]
    assert (info.value, info.level, info.threshold) == (0.5, "ok", None)
    bound = QualitySpec(feedback_score=Bound(warn=0.8, alert=0.6))
    checked = _by_name(quality_signals([], [], scores, bound, target="stable"))["quality.feedback_score"]
    assert (checked.level, checked.threshold) == ("alert", 0.6)
    assert _by_name(quality_signals([], [], [], QualitySpec(), target="s"))["quality.json_valid"].level == (
        "insufficient_data"
    )


def test_latency_percentiles_against_slo_maxima() -> None:
    latencies = [100.0] * 90 + [1500.0] * 10
    spec = LatencySpec(p50_ms=Bound(alert=200), p99_ms=None)
    results = _by_name(latency_signals(latencies, [], [200] * 100, spec, target="stable"))
    assert (results["latency.p50_ms"].value, results["latency.p50_ms"].level) == (100.0, "ok")
    p95 = results["latency.p95_ms"]
    assert p95.value == pytest.approx(1500.0) and (p95.level, p95.threshold) == ("warn", 2000)
    assert (results["latency.p99_ms"].level, results["latency.p99_ms"].threshold) == ("ok", None)
    assert results["latency.ttft_p95_ms"].level == "insufficient_data"  # no streamed requests


def test_error_rate_counts_server_failures_not_client_errors() -> None:
    statuses = [200] * 90 + [400, 401, 404, 429, 499] * 2 + [502, 503, 504]
    result = _by_name(latency_signals([10.0] * 103, [], statuses, LatencySpec(), target="canary"))["errors.rate"]
    assert result.value == pytest.approx(3 / 103) and result.details["errors"] == 3
    assert (result.level, result.threshold) == ("warn", 0.05)
    failing = _by_name(latency_signals([10.0] * 20, [], [200] * 18 + [500, 503], LatencySpec(), target="c"))
    assert failing["errors.rate"].level == "alert"
    quiet = _by_name(latency_signals([], [], [], LatencySpec(), target="c"))
    assert {r.level for r in quiet.values()} == {"insufficient_data"}
