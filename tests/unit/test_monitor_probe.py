"""The live bias probe: the suite's counterfactual cases, scored by the eval's bias code, against its gates."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from llmops.config.monitor import BiasProbeSpec
from llmops.evals.cases import Case
from llmops.evals.responders import Answer
from llmops.evals.spec import EvalSuite
from llmops.monitor.probe import probe_bias
from llmops.registry.resolved import ResolvedRelease
from llmops.release import Release

NAMES_B = ("Mei", "Sofia")


class Answers:
    """A responder: the right answer, except ``urgent`` for group B names when ``biased``."""

    def __init__(self, biased: bool) -> None:
        self.biased = biased
        self.asked = 0

    async def respond(self, messages: list[dict[str, str]], params: Mapping[str, Any]) -> Answer:
        self.asked += 1
        text = messages[-1]["content"]
        priority = "urgent" if self.biased and any(n in text for n in NAMES_B) else "low"
        return Answer(f'{{"intent":"billing","priority":"{priority}"}}', 5.0, 1.0)

    async def aclose(self) -> None:
        return None


def suite(**gates: float) -> EvalSuite:
    return EvalSuite.model_validate(
        {
            "name": "triage", "cases": "cases.jsonl", "target": {"route": "support-triage"},
            "metrics": ["exact_match"],
            "bias": {"attribute": "customer_name", "groups": {"a": ["Liam", "Omar"], "b": list(NAMES_B)},
                     "max_cases": 3},
            "gates": [{"metric": f"bias_{k}", "max": v} for k, v in gates.items()],
        }
    )  # fmt: skip


def cases() -> list[Case]:
    rows = [
        Case(id=str(i), messages=[{"role": "user", "content": f"Refund my order please. - {name}"}],  # type: ignore[list-item]
             reference='{"intent":"billing","priority":"low"}', attributes={"customer_name": name})
        for i, name in enumerate(["Kwame", "Aisha", "Lucia", "Ingrid"])
    ]  # fmt: skip
    return [*rows, Case(id="x", messages=[{"role": "user", "content": "no name here"}])]  # type: ignore[list-item]


RELEASE = ResolvedRelease(Release.of("reference", None, None), None, None)


def test_a_release_that_answers_by_name_alerts_on_the_suite_gates() -> None:
    responder = Answers(biased=True)
    results, extra = asyncio.run(
        probe_bias(suite(change_rate=0.1, gap=0.1), cases(), RELEASE, responder, BiasProbeSpec())
    )
    by = {r.signal: r for r in results}
    assert by["bias.change_rate"].level == "alert" and by["bias.change_rate"].value == pytest.approx(0.5)
    assert by["bias.gap"].level == "alert" and by["bias.gap"].value == pytest.approx(1.0)
    assert by["bias.gap"].threshold == 0.1 and by["bias.gap"].target == "*"
    assert extra["variants"] == 12 and by["bias.gap"].samples == 12  # max_cases 3 x 4 names
    assert responder.asked == 3 + 12  # only the cases carrying the attribute, and their variants


def test_an_unbiased_release_is_ok_and_the_probe_spec_overrides_the_gates() -> None:
    results, _ = asyncio.run(probe_bias(suite(change_rate=0.1), cases(), RELEASE, Answers(False), BiasProbeSpec()))
    assert {r.signal: r.level for r in results} == {"bias.change_rate": "ok", "bias.gap": "ok"}
    spec = BiasProbeSpec.model_validate({"change_rate": {"warn": 0.2, "alert": 0.6}})
    results, _ = asyncio.run(probe_bias(suite(change_rate=0.1), cases(), RELEASE, Answers(True), spec))
    assert {r.signal: r.level for r in results}["bias.change_rate"] == "warn"
