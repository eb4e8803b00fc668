"""Descriptor signals: text length and non-letter share, JSON validity, empty and refusal rates, JSON fields."""

from __future__ import annotations

import json
import random

import pytest

from llmops.config.monitor import DescriptorsSpec
from llmops.monitor.descriptors import (
    MISSING,
    compare_categorical,
    compare_numeric,
    field_value,
    non_letter_share,
    output_descriptors,
    text_descriptors,
)


def _answers(n: int, urgent: float, seed: int) -> list[str]:
    rng = random.Random(seed)
    others = ("low", "medium", "high")
    return [
        json.dumps({"intent": "billing", "priority": "urgent" if rng.random() < urgent else rng.choice(others)})
        for _ in range(n)
    ]


def test_non_letter_share_ignores_spaces() -> None:
    assert non_letter_share("ab 12") == 0.5 and non_letter_share("") == 0.0 and non_letter_share("   ") == 0.0


def test_lengths_ks_test_below_large_sample_and_normed_wasserstein_from_it() -> None:
    rng = random.Random(0)
    ref = ["x" * rng.randint(40, 80) for _ in range(1500)]
    same = ["x" * rng.randint(40, 80) for _ in range(400)]
    longer = ["x" * rng.randint(55, 95) for _ in range(400)]
    spec = DescriptorsSpec()
    ok, drift = (text_descriptors("input", ref, live, spec, target="*")[0] for live in (same, longer))
    assert (ok.signal, ok.level, ok.statistic) == ("input.length", "ok", "ks_p")
    assert (drift.level, drift.statistic) == ("alert", "ks_p") and drift.p_value is not None and drift.p_value < 0.05
    edges = drift.details["bin_edges"]
    assert len(edges) == len(drift.details["reference_histogram"]) + 1 == len(drift.details["live_histogram"]) + 1
    assert sum(drift.details["live_histogram"]) == 400 and sum(drift.details["reference_histogram"]) == 1500
    big = ["x" * rng.randint(55, 95) for _ in range(1000)]
    large = compare_numeric("input.length", [len(t) for t in ref], [len(t) for t in big], spec, target="*")
    assert (large.statistic, large.level) == ("wasserstein_normed", "alert")
    assert large.value == pytest.approx(large.details["wasserstein"] / 11.8, rel=0.1)  # std of U(40, 80) ~ 11.8
    assert large.p_value is None


def test_priority_distribution_shift_alerts_and_reports_both_frequency_tables() -> None:
    spec = DescriptorsSpec(fields=["priority", "intent"])
    ref = _answers(1200, 0.25, 1)
    results = {r.signal: r for r in output_descriptors(ref, _answers(500, 0.35, 2), spec, target="canary")}
    shifted = results["field.priority"]
    assert shifted.level == "alert" and shifted.statistic == "chi_square_p" and shifted.target == "canary"
    assert set(shifted.details["reference_counts"]) == {"low", "medium", "high", "urgent"}
    assert sum(shifted.details["live_counts"].values()) == 500
    assert results["field.intent"].level == "ok"  # one category on both sides: nothing to compare
    calm = {r.signal: r for r in output_descriptors(ref, _answers(500, 0.25, 3), spec, target="canary")}
    assert calm["field.priority"].level == "ok"
    large = compare_categorical(
        "field.priority", [field_value(t, "priority") for t in ref],
        [field_value(t, "priority") for t in _answers(1000, 0.6, 4)], spec, target="canary",
    )  # fmt: skip
    assert (large.statistic, large.level) == ("js_distance", "alert") and large.value is not None


def test_missing_field_and_invalid_json_count_as_missing_category() -> None:
    assert field_value('{"intent": "billing"}', "priority") == MISSING
    assert field_value("not json", "priority") == MISSING
    assert field_value("[1, 2]", "priority") == MISSING
    assert field_value('{"priority": 2}', "priority") == "2"


def test_refusals_json_validity_and_empty_answers_are_rates() -> None:
    spec = DescriptorsSpec()
    ref = _answers(600, 0.25, 1)
    live = _answers(440, 0.25, 2) + ["I'm sorry, I cannot help with that."] * 40 + [""] * 20
    results = {r.signal: r for r in output_descriptors(ref, live, spec, target="stable")}
    for name, rate in (("output.refusal", 40 / 500), ("output.empty", 20 / 500), ("output.json_valid", 440 / 500)):
        assert results[name].level == "alert", name
        assert results[name].details["live_rate"] == pytest.approx(rate)
        assert results[name].details["reference_rate"] == (1.0 if name == "output.json_valid" else 0.0)


def test_a_few_refusals_use_fishers_exact_test() -> None:
    spec = DescriptorsSpec()
    ref = _answers(100, 0.25, 1)
    live = _answers(98, 0.25, 2) + ["As an AI I can't help"] * 2
    refusal = {r.signal: r for r in output_descriptors(ref, live, spec, target="stable")}["output.refusal"]
    assert refusal.statistic == "fisher_p" and refusal.level == "ok"


def test_small_windows_are_insufficient_never_ok() -> None:
    spec = DescriptorsSpec(fields=["priority"])
    results = output_descriptors(_answers(500, 0.25, 1), _answers(49, 0.25, 2), spec, target="stable")
    assert {r.level for r in results} == {"insufficient_data"} and len(results) == 6
    assert all(r.samples == 49 for r in results)
