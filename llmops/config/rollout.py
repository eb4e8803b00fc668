"""Schema of ``serving/rollout.yaml``: how ``llmops rollout start ROUTE`` moves a canary release to production.

Per route: the **steps** (canary weight % per step, each held at least ``min_duration`` and until both arms
have ``min_samples`` requests, at most ``max_duration``), and the **checks**, each comparing the canary arm
with the stable arm over the same window at ``confidence`` (Kayenta's default: 0.98; alpha = 1 - confidence).

Check names (what results, ``llmops rollout status`` and the ``llmops_rollout_check`` gauge use):

- ``error_rate``: share of failed requests (5xx, and 4xx but 429/499: both arms get the same clients);
- ``latency``: Mann-Whitney U with a tolerance band around the Hodges-Lehmann shift, and the p95 ratio;
  ``latency_slo`` when ``slo_p95_ms`` is set;
- ``json_validity``: share of captured answers that parse as JSON;
- ``feedback_score``: mean feedback score of each arm's requests;
- ``output_drift``: canary-vs-stable captured answers, embedding classifier ROC AUC.

Checks on answers (``json_validity``, ``feedback_score``, ``output_drift``) need the route to capture
outputs (``capture`` > 0 in ``serving/gateway.yaml``); ``llmops validate`` checks that.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from llmops.config.base import StrictModel
from llmops.config.gateway import GatewayFile
from llmops.config.monitor import parse_duration
from llmops.config.yamlio import load_model
from llmops.errors import ConfigError
from llmops.names import NAME_PATTERN

Name = Annotated[str, StringConstraints(pattern=f"^{NAME_PATTERN}$")]
CHECK_NAMES = ("error_rate", "latency", "json_validity", "feedback_score", "output_drift")
#: checks that read captured answers or feedback: the route must capture outputs
CAPTURE_CHECKS = ("json_validity", "feedback_score", "output_drift")


def _duration(value: str) -> str:
    parse_duration(value)
    return value


class StepSpec(StrictModel):
    """One step: the canary's share of traffic, held until the checks decide (or the step times out)."""

    weight: int = Field(ge=1, le=100, description="canary weight in percent (stable gets the rest)")
    min_duration: str = Field(default="30s", description="the step lasts at least this long (e.g. 30s, 5m)")
    min_samples: int = Field(
        default=100, ge=1, description="requests per arm before any verdict (no verdict below the minimum sample)"
    )
    max_duration: str = Field(
        default="30m", description="minimum sample not reached by then: the rollout pauses (inconclusive)"
    )

    _min_duration = field_validator("min_duration")(_duration)
    _max_duration = field_validator("max_duration")(_duration)

    @model_validator(mode="after")
    def _max_after_min(self) -> StepSpec:
        if self.max_duration_s < self.min_duration_s:
            raise ValueError(f"max_duration ({self.max_duration}) is shorter than min_duration ({self.min_duration})")
        return self

    @property
    def min_duration_s(self) -> float:
        return parse_duration(self.min_duration)

    @property
    def max_duration_s(self) -> float:
        return parse_duration(self.max_duration)


class ErrorRateCheck(StrictModel):
    """Fail when the canary's error rate exceeds the stable's by more than ``max_increase`` (with confidence)."""

    max_increase: float = Field(default=0.01, ge=0, lt=1, description="absolute increase tolerated, e.g. 0.01")


class LatencyCheck(StrictModel):
    """Kayenta's judge: fail when the canary is slower beyond a tolerance band AND its p95 is above the ratio."""

    tolerance: float = Field(
        default=0.25, ge=0, description="shift tolerated, as a share of the Hodges-Lehmann estimate |HL|"
    )
    max_p95_ratio: float = Field(default=1.2, ge=1, description="p95(canary) / p95(stable) tolerated")
    slo_p95_ms: float | None = Field(
        default=None, gt=0, description="absolute SLO: fail when the canary's p95 is above it (with confidence)"
    )


class JsonValidityCheck(StrictModel):
    """Fail when the canary's share of answers that parse as JSON drops by more than ``max_decrease``."""

    max_decrease: float = Field(default=0.02, ge=0, lt=1, description="absolute decrease tolerated, e.g. 0.02")


class FeedbackScoreCheck(StrictModel):
    """Fail when the canary's mean feedback score drops by more than ``max_decrease`` (Welch difference)."""

    max_decrease: float = Field(default=0.1, ge=0, description="absolute decrease of the mean score tolerated")
    min_samples: int = Field(default=30, ge=2, description="scored requests per arm before this check has a verdict")


class OutputDriftCheck(StrictModel):
    """Fail when a classifier tells canary answers from stable ones apart (ROC AUC above ``max_auc``)."""

    max_auc: float = Field(default=0.75, gt=0.5, le=1.0, description="AUC tolerated (0.5: indistinguishable)")
    min_samples: int = Field(default=50, ge=5, description="captured answers per arm before this check has a verdict")


class ChecksSpec(StrictModel):
    """The checks of a route's rollout; a check that is None (or left out of a ``checks:`` mapping) is off.

    Without a ``checks:`` mapping, ``error_rate`` and ``latency`` run.
    """

    error_rate: ErrorRateCheck | None = Field(default_factory=ErrorRateCheck)
    latency: LatencyCheck | None = Field(default_factory=LatencyCheck)
    json_validity: JsonValidityCheck | None = None
    feedback_score: FeedbackScoreCheck | None = None
    output_drift: OutputDriftCheck | None = None

    def enabled(self) -> list[str]:
        """Names of the checks that run, in CHECK_NAMES order."""
        return [name for name in CHECK_NAMES if getattr(self, name) is not None]


class RouteRollout(StrictModel):
    """A route's rollout: steps and checks."""

    confidence: float = Field(
        default=0.98, gt=0.5, lt=1, description="per check and step; a check fails at p <= 1 - confidence"
    )
    steps: list[StepSpec] = Field(
        min_length=1, max_length=10, description="canary weights, strictly increasing; the last one may be 100"
    )
    checks: ChecksSpec = Field(default_factory=ChecksSpec)

    @field_validator("checks", mode="before")
    @classmethod
    def _listed_checks_only(cls, v: Any) -> Any:
        # In a written ``checks:`` mapping, a check that is not listed is off ("omit one to skip it").
        if isinstance(v, dict):
            return {**dict.fromkeys(CHECK_NAMES), **v}
        return v

    @field_validator("checks")
    @classmethod
    def _some_check(cls, v: ChecksSpec) -> ChecksSpec:
        if not v.enabled():
            raise ValueError(f"name at least one check ({', '.join(CHECK_NAMES)})")
        return v

    @field_validator("steps")
    @classmethod
    def _increasing(cls, v: list[StepSpec]) -> list[StepSpec]:
        weights = [s.weight for s in v]
        if any(b <= a for a, b in zip(weights, weights[1:], strict=False)):
            raise ValueError(f"step weights must be strictly increasing, got {weights}")
        return v


def _as_list(v: Any) -> Any:
    return [v] if isinstance(v, str) else v


class RolloutFile(StrictModel):
    """Schema of ``serving/rollout.yaml``."""

    version: Literal[1] = 1
    request_log: list[str] = Field(
        default_factory=lambda: ["logs/gateway-requests*.jsonl"],
        min_length=1,
        description="paths or globs of every replica's request log, relative to the llmops home unless absolute",
    )
    feedback_log: list[str] = Field(
        default_factory=lambda: ["logs/feedback*.jsonl"],
        description="paths or globs of the feedback logs, relative to the llmops home unless absolute",
    )
    replicas: list[str] = Field(
        default_factory=list,
        description="gateway base URLs whose GET /healthz must answer; one unreachable for 15 s pauses the rollout",
    )
    interval_s: float = Field(default=5.0, ge=0.2, description="seconds between the controller's looks")
    routes: dict[Name, RouteRollout] = Field(min_length=1)

    _request_log = field_validator("request_log", mode="before")(_as_list)
    _feedback_log = field_validator("feedback_log", mode="before")(_as_list)

    @field_validator("replicas")
    @classmethod
    def _urls(cls, v: list[str]) -> list[str]:
        for url in v:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"a replica is an http(s) base URL, got {url!r}")
        return [url.rstrip("/") for url in v]


def load_rollout_file(path: Path, *, display: str | None = None) -> RolloutFile:
    """Read and check ``serving/rollout.yaml`` (errors name file, line and field)."""
    return load_model(RolloutFile, path, display=display)


def parse_steps(text: str, base: RouteRollout) -> list[StepSpec]:
    """``--steps 10,50,100``: these canary weights, every other field from the spec's first step."""
    first = base.steps[0]
    try:
        weights = [int(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError.at(
            "--steps", f"expected comma-separated percentages such as 10,50,100, got {text!r}"
        ) from None
    if not all(1 <= w <= 100 for w in weights):
        raise ConfigError.at("--steps", f"every weight must be between 1 and 100, got {weights}")
    if any(b <= a for a, b in zip(weights, weights[1:], strict=False)):
        raise ConfigError.at("--steps", f"weights must be strictly increasing, got {weights}")
    if len(weights) > 10:
        raise ConfigError.at("--steps", f"at most 10 steps, got {len(weights)}")
    return [first.model_copy(update={"weight": w}) for w in weights]


def rollout_arms(gateway: GatewayFile, route: str) -> tuple[str, str]:
    """(stable target name, canary target name) of ``route``: its ``release: production`` and ``release: canary``
    targets, exactly one each; ConfigError (naming the gateway field) otherwise."""
    spec = gateway.routes.get(route)
    if spec is None:
        known = ", ".join(sorted(gateway.routes))
        raise ConfigError.at("serving/gateway.yaml", f"no route {route!r} (routes: {known})", field=f"routes.{route}")
    names: dict[str, list[str]] = {"production": [], "canary": []}
    for target in spec.targets:
        if target.release is not None:
            names[target.release].append(target.name)
    for stage, found in names.items():
        if len(found) != 1:
            raise ConfigError.at(
                "serving/gateway.yaml",
                f"a rollout needs exactly one target with release: {stage}, found {len(found)}"
                + (f" ({', '.join(found)})" if found else ""),
                field=f"routes.{route}.targets",
            )
    return names["production"][0], names["canary"][0]
