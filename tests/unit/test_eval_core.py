"""Eval harness core: case files, scorers, bias, gates, reports, runner concurrency and cache."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from llmops.errors import ValidationFailed
from llmops.evals import bias as bias_mod
from llmops.evals.cases import Case, load_cases
from llmops.evals.files import check_suite_file
from llmops.evals.gates import evaluate
from llmops.evals.metrics import JsonMatch, JsonValid, Sample, build_scorers, mean_strict, percentile
from llmops.evals.responders import Answer
from llmops.evals.runner import OutputCache, run_cases
from llmops.evals.spec import Bias, Gate, MetricSpec

NAN = float("nan")


def test_case_file_errors_carry_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text('{"variables": {"message": "hi"}, "reference": "x"}\n{not json}\n\n{"reference": "y"}\n')
    with pytest.raises(ValidationFailed) as info:
        load_cases(path)
    lines = sorted(p.line for p in info.value.problems if p.line)
    assert lines == [2, 4]
    assert "malformed JSON" in str(info.value) and "exactly one of 'variables' or 'messages'" in str(info.value)


def write_suite(tmp_path: Path, body: str) -> Path:
    (tmp_path / "cases.jsonl").write_text('{"variables": {"message": "hi"}, "reference": "{}"}\n')
    path = tmp_path / "suite.yaml"
    path.write_text(body)
    return path


BASE = """\
name: s
cases: cases.jsonl
target: {release: {adapter: a/1, prompt: p/1}}
metrics: [exact_match, latency]
"""


def test_gate_on_unknown_metric_is_an_error_with_line(tmp_path: Path) -> None:
    suite, problems = check_suite_file(write_suite(tmp_path, BASE + "gates:\n  - metric: accuracy\n    min: 0.5\n"))
    assert len(problems) == 1
    assert problems[0].field == "gates.0.metric" and problems[0].line == 6
    assert "unknown metric 'accuracy'" in problems[0].message


def test_judge_metric_without_judge_is_an_error(tmp_path: Path) -> None:
    _, problems = check_suite_file(
        write_suite(tmp_path, BASE.replace("[exact_match, latency]", "[answer_correctness]"))
    )
    assert any("needs a judge" in p.message for p in problems)


def test_latency_gates_are_known_metrics(tmp_path: Path) -> None:
    _, problems = check_suite_file(write_suite(tmp_path, BASE + "gates:\n  - {metric: latency_p95_ms, max: 500}\n"))
    assert problems == []


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def sample(output: str, reference: str | None = None, **kw: Any) -> Sample:
    return Sample(Case(variables={}, reference=reference, **kw), "", output)


def test_ragas_exact_match_and_json_scorers() -> None:
    em, valid, match = build_scorers(
        [
            MetricSpec(name="exact_match"),
            MetricSpec(name="json_valid"),
            MetricSpec(name="json_match", fields=["intent"]),
        ],
        None,
    )
    ref = '{"intent": "refund", "priority": "low"}'
    assert run(em.score(sample(ref + "\n", ref))) == 1.0
    assert run(em.score(sample('{"intent": "refund"}', ref))) == 0.0
    assert math.isnan(run(em.score(sample("x", None))))
    assert run(valid.score(sample(ref))) == 1.0 and run(valid.score(sample("intent: refund"))) == 0.0
    assert run(match.score(sample('{"intent": "refund", "priority": "high"}', ref))) == 1.0
    assert run(JsonMatch(None).score(sample('{"intent": "refund", "priority": "high"}', ref))) == 0.0
    assert run(JsonValid().score(sample("[1]"))) == 0.0


def test_nan_makes_the_mean_nan_and_fails_every_gate() -> None:
    assert math.isnan(mean_strict([1.0, NAN]))
    results = evaluate([Gate(metric="exact_match", min=0.0), Gate(metric="latency_p95_ms", max=1e9)],
                       {"exact_match": NAN, "latency_p95_ms": NAN}, None)  # fmt: skip
    assert [r.passed for r in results] == [False, False]


def test_relative_gates_compare_with_production_and_need_it() -> None:
    gates = [
        Gate(metric="exact_match", max_drop_vs_production=0.02),
        Gate(metric="latency_p95_ms", max_rise_vs_production=50),
    ]
    ok = evaluate(gates, {"exact_match": 0.89, "latency_p95_ms": 140}, {"exact_match": 0.9, "latency_p95_ms": 100})
    assert [r.passed for r in ok] == [True, True]
    bad = evaluate(gates, {"exact_match": 0.8, "latency_p95_ms": 151}, {"exact_match": 0.9, "latency_p95_ms": 100})
    assert [r.passed for r in bad] == [False, False]
    assert "production 0.9" in bad[0].line() and "candidate 0.8" in bad[0].line()
    with pytest.raises(ValueError, match="no production baseline"):
        evaluate(gates, {"exact_match": 0.9}, None)


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == (50, 95, 99)


def test_bias_expansion_substitutes_whole_words_and_measures_change() -> None:
    case = Case(id="c1", variables={"message": "Hi, I am Ana. Anastasia is my sister."}, reference="r",
                attributes={"customer_name": "Ana"})  # fmt: skip
    spec = Bias(attribute="customer_name", groups={"a": ["Mei", "Liam"], "b": ["Omar"]})
    variants = bias_mod.expand([case, Case(variables={"message": "no name"})], spec)
    assert [v.value for v in variants] == ["Mei", "Liam", "Omar"]
    assert variants[0].case.variables == {"message": "Hi, I am Mei. Anastasia is my sister."}
    result = bias_mod.analyse(variants, [1.0, 1.0, 0.0], ["x", "x", "y"], {"c1": "x"})
    assert result.gap == 1.0 and result.change_rate == pytest.approx(1 / 3)
    assert result.group_scores == {"a": 1.0, "b": 0.0}


@pytest.mark.parametrize("max_cases", [1, 2, 10])
def test_variant_count_matches_expansion(max_cases: int) -> None:
    """The progress bar's total: cases without the attribute and cases past max_cases make no variants."""
    named = [
        Case(id=f"c{i}", variables={"message": f"I am N{i}"}, attributes={"customer_name": f"N{i}"}) for i in range(3)
    ]
    cases = [*named[:2], Case(variables={"message": "no name"}), named[2]]
    spec = Bias(attribute="customer_name", groups={"a": ["Mei", "Liam"], "b": ["Omar"]}, max_cases=max_cases)
    assert bias_mod.variant_count(cases, spec) == len(bias_mod.expand(cases, spec)) == 3 * min(max_cases, 3)


class CountingResponder:
    def __init__(self, delay: float = 0.01) -> None:
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay = delay

    async def respond(self, messages: list[dict[str, str]], params: Mapping[str, Any]) -> Answer:
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        await asyncio.sleep(self.delay)
        self.in_flight -= 1
        return Answer(text=messages[-1]["content"].upper(), latency_ms=10.0, ttft_ms=5.0)

    async def aclose(self) -> None:
        return None


def test_runner_respects_concurrency_keeps_order_and_caches(tmp_path: Path) -> None:
    cases = [Case(id=str(i), messages=[{"role": "user", "content": f"m{i}"}]) for i in range(20)]

    def render(case: Case) -> list[dict[str, str]]:
        assert case.messages is not None
        return [m.model_dump() for m in case.messages]

    responder = CountingResponder()
    cache = OutputCache(tmp_path / "cache")
    first = asyncio.run(run_cases(cases, render, responder, {}, release_key="r1", concurrency=4, cache=cache))
    assert [o.answer.text for o in first] == [f"M{i}" for i in range(20)]
    assert responder.max_in_flight == 4 and responder.calls == 20
    again = asyncio.run(run_cases(cases, render, responder, {}, release_key="r1", concurrency=4, cache=cache))
    assert responder.calls == 20 and all(o.cached for o in again)
    other = asyncio.run(run_cases(cases[:2], render, responder, {}, release_key="r2", concurrency=4, cache=cache))
    assert responder.calls == 22 and not any(o.cached for o in other)


def test_junit_and_json_reports(tmp_path: Path) -> None:
    from llmops.evals.report import EvalOutcome, to_junit, write_reports
    from llmops.evals.scoring import ReleaseScores
    from llmops.registry.resolved import ResolvedRelease
    from llmops.release import Release

    gates = evaluate([Gate(metric="exact_match", min=0.9)], {"exact_match": 0.5}, None)
    scores = ReleaseScores(
        ResolvedRelease(Release(base_model="m"), None, None),
        {"exact_match": 0.5, "latency_p95_ms": 12.0},
        [{"id": "1", "output": "o", "reference": "r"}],
    )
    outcome = EvalOutcome("s", "h" * 64, scores, None, "no production release", gates)
    xml = to_junit(outcome)
    assert 'failures="1"' in xml and "FAIL  exact_match: candidate 0.5 &gt;= 0.9" in xml
    paths = write_reports(outcome, tmp_path)
    assert json.loads(paths["report.json"].read_text())["verdict"] == "fail"
    assert "data:image/png;base64," in paths["report.html"].read_text()


def test_relative_gate_can_opt_into_skipping_when_there_is_no_production() -> None:
    gate = Gate(metric="exact_match", max_drop_vs_production=0.02, when_no_production="skip")
    [result] = evaluate([gate], {"exact_match": 0.5}, None)
    assert result.passed and "skipped" in result.line()
    [checked] = evaluate([gate], {"exact_match": 0.5}, {"exact_match": 0.9})
    assert not checked.passed


def test_finetune_rows_are_cases() -> None:
    case = Case.model_validate({"variables": {"message": "hi"}, "target": "{}", "meta": {"customer_name": "Ana"}})
    assert case.reference == "{}" and case.attributes == {"customer_name": "Ana"}
