"""Schema of ``serving/monitor.yaml``: what ``llmops monitor run|serve`` watches, and what it does on an alert.

One file for the workspace. Per route: the **reference** live traffic is compared with, the **window**
(a span of time or the last N requests), the **signals** with their thresholds, and **alert rules**
(a level held for ``for:`` consecutive windows) that run named **actions** (a webhook, a retraining job).

Signal names (what alert rules, reports and the ``llmops_monitor_*`` gauges use):

- ``input_drift``, ``output_drift``: sentence-embedding drift (domain-classifier ROC AUC, MMD p-value);
- ``input.length``, ``input.non_letter_share``, ``output.length``, ``output.non_letter_share``,
  ``output.json_valid``, ``output.empty``, ``output.refusal``: descriptor distributions vs the reference;
- ``field.NAME``: the distribution of the output's JSON field ``NAME`` (``descriptors.fields``); the
  descriptor tests of one window (KS, chi-square, Fisher) are corrected together (``descriptors.correction``);
- ``quality.json_valid``, ``quality.schema``, ``quality.exact_match`` (on requests whose feedback carries a
  correction), ``quality.feedback_score``;
- ``latency.p50_ms``, ``latency.p95_ms``, ``latency.p99_ms``, ``latency.ttft_p95_ms``, ``errors.rate``;
- ``bias.change_rate``, ``bias.gap`` (``llmops monitor probe``).

A rule's ``signals`` are names or shell-style patterns (``field.*``). Every signal reports ``ok``, ``warn``,
``alert`` or ``insufficient_data`` (below its minimum sample; never ``ok``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from llmops.config.base import StrictModel
from llmops.config.yamlio import load_model
from llmops.names import NAME_PATTERN

Name = Annotated[str, StringConstraints(pattern=f"^{NAME_PATTERN}$")]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
LEVELS = ("ok", "warn", "alert", "insufficient_data")
Correction = Literal["holm", "none"]  # a window's p-value tests: Holm-Bonferroni, or each on its own


def parse_duration(value: str | float | int) -> float:
    """Seconds in ``value``: a number (seconds) or ``90s``, ``15m``, ``1h``, ``7d``."""
    if isinstance(value, int | float):
        if value <= 0:
            raise ValueError("a duration must be positive")
        return float(value)
    match = _DURATION.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a duration (write e.g. 90s, 15m, 1h, 7d)")
    seconds = float(match[1]) * _UNIT_S[match[2]]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


class WindowSpec(StrictModel):
    """One window: a span of time (``duration``) or the last N requests of the route (``requests``)."""

    duration: str | None = Field(default=None, description="e.g. 1h, 15m; the default when neither is given: 1h")
    requests: int | None = Field(default=None, ge=1, description="the last N requests per window")
    count: int = Field(default=6, ge=1, le=1000, description="consecutive windows a run evaluates, newest last")

    @field_validator("duration")
    @classmethod
    def _duration(cls, v: str | None) -> str | None:
        if v is not None:
            parse_duration(v)
        return v

    @model_validator(mode="after")
    def _one_kind(self) -> WindowSpec:
        if self.duration is not None and self.requests is not None:
            raise ValueError("give either duration or requests, not both")
        return self

    @property
    def seconds(self) -> float | None:
        """The window's length in seconds (None for a window of N requests)."""
        if self.requests is not None:
            return None
        return parse_duration(self.duration or "1h")


class ReferenceSpec(StrictModel):
    """What live traffic is compared with."""

    training_data: bool = Field(default=True, description="inputs of the serving adapter's training data")
    suites: list[str] | None = Field(
        default=None, description="eval suites (workspace paths) whose cases join the inputs; default: the route's"
    )
    data: list[str] = Field(default_factory=list, description="more JSONL rows (fine-tune data format)")
    outputs: Literal["eval_record", "none"] = Field(
        default="eval_record", description="outputs: the serving release's passing eval record"
    )
    max_rows: int = Field(default=2000, ge=10, description="rows kept (a seeded sample beyond)")


class DriftSpec(StrictModel):
    """Embedding drift: a classifier telling reference from live apart (ROC AUC), and MMD with a permutation test."""

    enabled: bool = True
    auc_alert: float = Field(default=0.55, gt=0.5, le=1.0, description="drift when the ROC AUC is above this")
    p_alert: float = Field(default=0.01, gt=0, lt=1, description="MMD permutation p-value below this: drift")
    sample: int = Field(default=500, ge=20, le=20_000, description="texts embedded per window (and reference)")
    permutations: int = Field(default=200, ge=20, le=10_000)
    min_samples: int = Field(default=100, ge=5)


class DescriptorsSpec(StrictModel):
    """Text descriptors and output JSON fields, reference vs live (Evidently's defaults by sample size)."""

    enabled: bool = True
    fields: list[str] = Field(default_factory=list, description="JSON fields of the output (categorical)")
    p_alert: float = Field(default=0.05, gt=0, lt=1, description="KS / chi-square p-value below this (small samples)")
    correction: Correction = Field(
        default="holm",
        description="family-wise correction of a window's KS / chi-square / Fisher tests: holm (levels from"
        " Holm-adjusted p-values, so calm traffic alerts on at most p_alert of windows) or none",
    )
    distance_alert: float = Field(
        default=0.1, gt=0, description="normed Wasserstein / Jensen-Shannon at or above this (large samples)"
    )
    large_sample: int = Field(default=1000, ge=10, description="from this many live rows, distances replace tests")
    min_samples: int = Field(default=50, ge=5)
    refusal_patterns: list[str] = Field(
        default_factory=lambda: [r"\bI can(?:no|')t (?:help|assist)", r"\bI'm sorry\b", r"\bas an AI\b"],
        description="regular expressions (case-insensitive) that mark an answer as a refusal",
    )


class Bound(StrictModel):
    """An SLO-style bound: ``warn`` and/or ``alert`` (a minimum or a maximum, by the signal)."""

    warn: float | None = None
    alert: float | None = None


class QualitySpec(StrictModel):
    """Live quality on captured outputs and on feedback."""

    enabled: bool = True
    json_valid: Bound | None = Field(default_factory=lambda: Bound(warn=0.98, alert=0.95), description="minimum")
    json_schema: dict[str, Any] | None = Field(default=None, description="JSON Schema every answer should follow")
    schema_valid: Bound | None = Field(default_factory=lambda: Bound(alert=0.95), description="minimum")
    exact_match: Bound | None = Field(
        default_factory=lambda: Bound(warn=0.9, alert=0.85), description="minimum, on feedback corrections"
    )
    feedback_score: Bound | None = Field(default=None, description="minimum mean feedback score")
    min_samples: int = Field(default=20, ge=1)


class LatencySpec(StrictModel):
    """Latency and errors per target, against SLOs (milliseconds; maxima)."""

    enabled: bool = True
    p50_ms: Bound | None = None
    p95_ms: Bound | None = Field(default_factory=lambda: Bound(warn=1000, alert=2000))
    p99_ms: Bound | None = None
    ttft_p95_ms: Bound | None = None
    error_rate: Bound | None = Field(default_factory=lambda: Bound(warn=0.01, alert=0.05))
    min_samples: int = Field(default=20, ge=1)


class BiasProbeSpec(StrictModel):
    """``llmops monitor probe``: the suite's counterfactual cases replayed through the gateway."""

    suite: str | None = Field(default=None, description="eval suite with a bias section; default: the route's")
    every: str = Field(default="6h", description="how often `monitor serve` runs the probe")
    change_rate: Bound | None = Field(default=None, description="maximum; default: the suite's bias gate")
    gap: Bound | None = Field(default=None, description="maximum; default: the suite's bias gate")
    max_cases: int | None = Field(default=None, ge=1, description="default: the suite's bias.max_cases")

    @field_validator("every")
    @classmethod
    def _every(cls, v: str) -> str:
        parse_duration(v)
        return v


class SignalsSpec(StrictModel):
    input_drift: DriftSpec = DriftSpec()
    output_drift: DriftSpec = DriftSpec()
    descriptors: DescriptorsSpec = DescriptorsSpec()
    quality: QualitySpec = QualitySpec()
    latency: LatencySpec = LatencySpec()
    bias: BiasProbeSpec | None = None


class AlertRule(StrictModel):
    """Raise an alert when any matching signal is at ``level`` (or worse) for ``for`` consecutive windows."""

    name: Name
    signals: list[str] = Field(min_length=1, description="signal names or patterns (field.*)")
    level: Literal["warn", "alert"] = "alert"
    for_: int = Field(default=1, alias="for", ge=1, le=100, description="consecutive windows")
    actions: list[Name] = Field(default_factory=list, description="names under the file's actions:")


class WebhookAction(StrictModel):
    """POST the trigger as JSON; retried with backoff in the background (the monitor never waits on it)."""

    type: Literal["webhook"]
    url: str | None = Field(default=None, description="http(s) URL; or url_env")
    url_env: str | None = Field(default=None, description="environment variable holding the URL (it may hold a token)")
    timeout_s: float = Field(default=5.0, gt=0)
    retries: int = Field(default=5, ge=0, le=20)
    backoff_s: float = Field(default=1.0, gt=0, description="first wait between tries; doubles each time")

    @model_validator(mode="after")
    def _one_url(self) -> WebhookAction:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of url or url_env")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https:// (got {self.url!r})")
        return self


class RetrainAction(StrictModel):
    """``llmops retrain ROUTE``: a candidate adapter from production traffic + feedback; never promoted."""

    type: Literal["retrain"]
    job: str | None = Field(default=None, description="fine-tune job file; default: the serving adapter's job")
    cluster: str | None = Field(default=None, description="Ray address: launch there instead of running here")
    min_records: int = Field(default=50, ge=1, description="captured requests needed to build a dataset")
    max_steps: int | None = Field(default=None, ge=1, description="optimizer steps (default: the job's)")
    endpoint: str | None = Field(
        default=None, description="engine URL the candidate is evaluated on (default: the route's engine)"
    )


Action = Annotated[WebhookAction | RetrainAction, Field(discriminator="type")]


class RouteMonitorSpec(StrictModel):
    reference: ReferenceSpec = ReferenceSpec()
    window: WindowSpec = WindowSpec()
    signals: SignalsSpec = SignalsSpec()
    alerts: list[AlertRule] = Field(default_factory=list)

    @field_validator("alerts")
    @classmethod
    def _unique_rules(cls, v: list[AlertRule]) -> list[AlertRule]:
        names = [r.name for r in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"alert rule names must be unique: {', '.join(dupes)}")
        return v


class MonitorFile(StrictModel):
    """Schema of ``serving/monitor.yaml``."""

    version: int = Field(default=1, ge=1, le=1)
    request_log: str = Field(
        default="logs/gateway-requests*.jsonl", description="path or glob, relative to the llmops home"
    )
    feedback_log: str = Field(default="logs/feedback*.jsonl", description="path or glob, relative to the llmops home")
    output_dir: str = Field(default="monitor", description="reports, relative to the llmops home")
    interval_s: float = Field(default=300.0, ge=1, description="`monitor serve`: seconds between runs")
    seed: int = 0
    actions: dict[Name, Action] = Field(default_factory=dict)
    routes: dict[Name, RouteMonitorSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _actions_exist(self) -> MonitorFile:
        for route, spec in self.routes.items():
            for rule in spec.alerts:
                for action in rule.actions:
                    if action not in self.actions:
                        known = ", ".join(sorted(self.actions)) or "none"
                        raise ValueError(
                            f"routes.{route}: alert {rule.name} names action {action!r}, which actions: lacks"
                            f" (defined: {known})"
                        )
        return self


def load_monitor_file(path: Path, *, display: str | None = None) -> MonitorFile:
    """Read and check ``serving/monitor.yaml`` (errors name file, line and field)."""
    return load_model(MonitorFile, path, display=display)
