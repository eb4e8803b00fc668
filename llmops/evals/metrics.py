"""Per-case scorers. Quality and judge metrics come from ragas; JSON checks are ours (ragas has none).

Every scorer returns a float in [0, 1] or NaN ("could not score"); NaN fails any gate on that metric.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Any, Protocol

from llmops.evals.cases import Case
from llmops.evals.spec import Judge, MetricSpec

NAN = float("nan")


@dataclass(frozen=True)
class Sample:
    """What a scorer sees: the case, the user input actually sent, and the release's answer."""

    case: Case
    user_input: str
    output: str


class Scorer(Protocol):
    name: str

    async def score(self, sample: Sample) -> float: ...


class RagasReferenceScorer:
    """A ragas metric of the form ``ascore(reference=…, response=…)``."""

    def __init__(self, name: str, metric: Any) -> None:
        self.name = name
        self._metric = metric

    async def score(self, sample: Sample) -> float:
        if sample.case.reference is None:
            return NAN
        result = await self._metric.ascore(reference=sample.case.reference.strip(), response=sample.output.strip())
        return float(result.value)


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text.strip())
    except (json.JSONDecodeError, ValueError):
        return None


class JsonValid:
    name = "json_valid"

    async def score(self, sample: Sample) -> float:
        return 1.0 if isinstance(_parse_json(sample.output), dict) else 0.0


class JsonMatch:
    """1 when the answer's JSON has the expected value for every compared field."""

    name = "json_match"

    def __init__(self, fields: list[str] | None) -> None:
        self._fields = fields

    async def score(self, sample: Sample) -> float:
        expected = sample.case.expected
        if expected is None and sample.case.reference is not None:
            expected = _parse_json(sample.case.reference)
        if not isinstance(expected, dict):
            return NAN
        got = _parse_json(sample.output)
        if not isinstance(got, dict):
            return 0.0
        fields = self._fields or sorted(expected)
        return 1.0 if all(got.get(f) == expected.get(f) for f in fields) else 0.0


class JsonSchema:
    name = "json_schema"

    def __init__(self, schema: dict[str, object]) -> None:
        import jsonschema

        self._validator = jsonschema.Draft202012Validator(schema)

    async def score(self, sample: Sample) -> float:
        got = _parse_json(sample.output)
        return 1.0 if got is not None and self._validator.is_valid(got) else 0.0


class RagasJudgeScorer:
    """An LLM-judge ragas metric; the judge is any OpenAI-compatible endpoint."""

    def __init__(self, name: str, judge: Judge) -> None:
        from openai import AsyncOpenAI
        from ragas.llms import llm_factory
        from ragas.metrics.collections import AnswerCorrectness, Faithfulness

        key = os.environ.get(judge.api_key_env, "") if judge.api_key_env else ""
        llm = llm_factory(
            judge.model, provider="openai", client=AsyncOpenAI(base_url=judge.base_url, api_key=key or "unused")
        )
        self.name = name
        self._metric: Any = (
            AnswerCorrectness(llm=llm, weights=[1.0, 0.0]) if name == "answer_correctness" else Faithfulness(llm=llm)
        )

    async def score(self, sample: Sample) -> float:
        if self.name == "answer_correctness":
            if sample.case.reference is None:
                return NAN
            result = await self._metric.ascore(
                user_input=sample.user_input, response=sample.output, reference=sample.case.reference
            )
        else:
            if not sample.case.contexts:
                return NAN
            result = await self._metric.ascore(
                user_input=sample.user_input, response=sample.output, retrieved_contexts=sample.case.contexts
            )
        value = float(result.value)
        return value if math.isfinite(value) else NAN


def build_scorers(specs: list[MetricSpec], judge: Judge | None) -> list[Scorer]:
    """Scorers for every per-case metric of a suite (latency and bias are aggregated elsewhere)."""
    from ragas.metrics.collections import BleuScore, CHRFScore, ExactMatch, NonLLMStringSimilarity, RougeScore

    ragas_reference = {
        "exact_match": ExactMatch,
        "bleu": BleuScore,
        "rouge": RougeScore,
        "chrf": CHRFScore,
        "string_similarity": NonLLMStringSimilarity,
    }
    out: list[Scorer] = []
    for spec in specs:
        if spec.name in ragas_reference:
            out.append(RagasReferenceScorer(spec.name, ragas_reference[spec.name]()))
        elif spec.name == "json_valid":
            out.append(JsonValid())
        elif spec.name == "json_match":
            out.append(JsonMatch(spec.fields))
        elif spec.name == "json_schema":
            out.append(JsonSchema(spec.json_schema or {"type": "object"}))
        elif spec.name in ("answer_correctness", "faithfulness"):
            assert judge is not None  # checked when the suite was loaded
            out.append(RagasJudgeScorer(spec.name, judge))
    return out


def mean_strict(values: list[float]) -> float:
    """Mean of per-case scores; NaN when any case could not be scored (so the gate fails, visibly)."""
    if not values or any(math.isnan(v) for v in values):
        return NAN
    return sum(values) / len(values)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest-rank) of ``values``; NaN when empty."""
    if not values:
        return NAN
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]
