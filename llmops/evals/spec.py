"""Schema of ``evals/NAME.yaml``: cases, target, metrics, bias substitutions, gates.

Everything that can be checked without sending a request is checked here: unknown metrics, gates
naming a metric the suite does not produce, judge metrics without a judge.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from llmops.config.base import StrictModel
from llmops.names import NAME_PATTERN

QUALITY_METRICS = ("exact_match", "bleu", "rouge", "chrf", "string_similarity")
JSON_METRICS = ("json_valid", "json_match", "json_schema")
JUDGE_METRICS = ("answer_correctness", "faithfulness")
LATENCY_OUTPUTS = ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "ttft_p50_ms", "ttft_p95_ms", "ttft_p99_ms")
BIAS_OUTPUTS = ("bias_gap", "bias_change_rate")
MetricName = Literal[
    "exact_match", "bleu", "rouge", "chrf", "string_similarity",
    "json_valid", "json_match", "json_schema",
    "answer_correctness", "faithfulness",
    "latency",
]  # fmt: skip
LOWER_IS_BETTER = (*LATENCY_OUTPUTS, *BIAS_OUTPUTS)


class MetricSpec(StrictModel):
    name: MetricName
    fields: list[str] | None = Field(None, description="json_match: fields compared (default: all expected)")
    json_schema: dict[str, object] | None = Field(None, description="json_schema: the JSON Schema answers must match")


class Judge(StrictModel):
    """Any OpenAI-compatible endpoint (the llmops gateway included) used by LLM-judge metrics."""

    base_url: str
    model: str
    api_key_env: str | None = Field(None, description="environment variable holding the judge's API key")


class ReleaseSpec(StrictModel):
    """An explicit release: base model + adapter version (or none) + prompt version + params."""

    base_model: str | None = Field(None, description="default: the workspace's models.base_model")
    adapter: str | None = Field(None, description="NAME/VERSION or NAME@alias; null = base model only")
    prompt: str | None = Field(None, description="NAME/VERSION or NAME@alias; null = case messages as given")
    params: dict[str, float | int | str | list[str]] = Field(default_factory=dict)


class Target(StrictModel):
    """What is evaluated: a route of serving/gateway.yaml (its stable release), or an explicit release."""

    route: str | None = Field(None, pattern=f"^{NAME_PATTERN}$")
    release: ReleaseSpec | None = None
    endpoint: str | None = Field(
        None, description="OpenAI-compatible base URL serving the release; default: llmops starts a local engine"
    )
    api_key_env: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Target:
        if (self.route is None) == (self.release is None):
            raise ValueError("target needs exactly one of 'route' or 'release'")
        return self


class Bias(StrictModel):
    """Counterfactual test: each case is re-run with ``attribute`` replaced by every value of every group."""

    attribute: str = Field(description="case attribute whose value appears in the input, e.g. customer_name")
    groups: dict[str, list[str]] = Field(min_length=2)
    score: str = Field("exact_match", description="metric compared between groups")
    max_cases: int = Field(50, ge=1, description="cases expanded (each into one variant per value)")

    @field_validator("groups")
    @classmethod
    def _non_empty(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, values in v.items():
            if not values:
                raise ValueError(f"group {name!r} has no values")
        return v


class Gate(StrictModel):
    metric: str
    min: float | None = None
    max: float | None = None
    max_drop_vs_production: float | None = Field(None, ge=0)
    max_rise_vs_production: float | None = Field(None, ge=0)
    when_no_production: Literal["error", "skip"] = Field(
        "error", description="relative bounds with no production release yet: refuse to run, or skip them"
    )

    @model_validator(mode="after")
    def _has_bound(self) -> Gate:
        if all(v is None for v in (self.min, self.max, self.max_drop_vs_production, self.max_rise_vs_production)):
            raise ValueError("a gate needs min, max, max_drop_vs_production or max_rise_vs_production")
        return self

    @property
    def relative(self) -> bool:
        return self.max_drop_vs_production is not None or self.max_rise_vs_production is not None


class EvalSuite(StrictModel):
    """Schema of ``evals/NAME.yaml``."""

    name: str = Field(pattern=f"^{NAME_PATTERN}$")
    description: str = ""
    cases: str = Field(description="JSONL case file, relative to the suite file")
    target: Target
    metrics: list[MetricSpec | MetricName] = Field(min_length=1)
    judge: Judge | None = None
    bias: Bias | None = None
    gates: list[Gate] = Field(default_factory=list)
    required: bool = Field(False, description="promotion of the route needs a passing record of this suite")
    concurrency: int = Field(8, ge=1, le=512)
    request_timeout_s: float = Field(60.0, gt=0)

    @field_validator("metrics")
    @classmethod
    def _normalise(cls, v: list[MetricSpec | str]) -> list[MetricSpec | str]:
        return [MetricSpec(name=m) if isinstance(m, str) else m for m in v]

    def metric_specs(self) -> list[MetricSpec]:
        return [m for m in self.metrics if isinstance(m, MetricSpec)]

    def produced(self) -> set[str]:
        """Every metric name this suite reports (gates may name only these)."""
        out: set[str] = set()
        for m in self.metric_specs():
            out.update(LATENCY_OUTPUTS if m.name == "latency" else (m.name,))
        if self.bias:
            out.update(BIAS_OUTPUTS)
        return out

    def consistency_problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Cross-field problems as (location, message): judge metrics without a judge, unknown gate metrics."""
        out: list[tuple[tuple[str | int, ...], str]] = []
        specs = self.metric_specs()
        for i, m in enumerate(specs):
            if m.name in JUDGE_METRICS and self.judge is None:
                out.append((("metrics", i), f"metric {m.name!r} needs a judge: add a 'judge' endpoint"))
        names = {m.name for m in specs}
        if self.bias and self.bias.score not in names:
            out.append((("bias", "score"), f"{self.bias.score!r} is not one of the suite's metrics"))
        produced = self.produced()
        for i, gate in enumerate(self.gates):
            if gate.metric not in produced:
                out.append(
                    (("gates", i, "metric"), f"unknown metric {gate.metric!r}; this suite produces {sorted(produced)}")
                )
        return out

    def suite_hash(self, cases_bytes: bytes) -> str:
        """Identity of the suite: its spec and the exact case file content."""
        h = hashlib.sha256(self.model_dump_json().encode())
        h.update(hashlib.sha256(cases_bytes).digest())
        return h.hexdigest()


def cases_path(suite_file: Path, suite: EvalSuite) -> Path:
    return (suite_file.parent / suite.cases).resolve()
