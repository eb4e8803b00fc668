"""The state of one rollout, as the controller keeps it in the registry (:mod:`llmops.registry.rollouts`).

A rollout moves through *phases* inside each step, and every phase change is written before the
work of the next phase starts, so a controller killed anywhere resumes at the phase it was in, and each
phase's work is idempotent (the same weights written twice is one write; promoting a release already in
place is "unchanged"):

``canary`` (point the canary stage at the candidate) → per step: ``weights`` (write the step's weights)
→ ``analysing`` (look every ``interval_s`` until the step passes, fails or runs out of time) → after the last
step ``promoting`` (the gated promotion to production) → ``finishing`` (weights back to 100/0) → done.

Statuses: ``running``, ``paused`` (inconclusive, or a replica unreachable: ``llmops rollout resume|abort``),
``succeeded``, ``failed`` (a check failed: canary weight 0, canary pointer back), ``aborted`` (by a person).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from llmops.config.rollout import StepSpec

PHASES = ("canary", "weights", "analysing", "promoting", "finishing", "done")
#: ``llmops_rollout_status`` values (the issue's scale; an abort by a person counts as failed)
STATUS_VALUES = {"running": 0, "succeeded": 1, "failed": 2, "aborted": 2, "paused": 3}


@dataclass(frozen=True)
class Step:
    """One step as the rollout runs it (durations in seconds)."""

    weight: int
    min_duration_s: float
    min_samples: int
    max_duration_s: float

    @classmethod
    def of(cls, spec: StepSpec) -> Step:
        return cls(spec.weight, spec.min_duration_s, spec.min_samples, spec.max_duration_s)

    def as_spec(self) -> StepSpec:
        return StepSpec(
            weight=self.weight, min_duration=f"{self.min_duration_s}s", min_samples=self.min_samples,
            max_duration=f"{self.max_duration_s}s",
        )  # fmt: skip


@dataclass
class RolloutState:
    """Everything a controller needs to continue a rollout (stored as JSON, see the module docstring)."""

    route: str
    actor: str
    adapter: str | None  # exact refs of the candidate release (NAME/VERSION)
    prompt: str | None
    label: str  # the candidate release, readable
    stable_target: str
    canary_target: str
    stable_adapter: str | None  # what the stable arm serves (the production release), as the request log labels it
    stable_prompt: str | None
    stable_version: int  # production pointer version when the rollout started
    previous_canary: int | None  # canary pointer version before the rollout (restored on failure)
    steps: list[Step]
    candidate: int | None = None  # canary pointer version of the candidate, once moved
    step: int = 0
    phase: str = "canary"
    step_started_at: float = 0.0
    step_starts: list[float] = field(default_factory=list)
    looks: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)  # the newest look's CheckResult dicts
    history: list[dict[str, Any]] = field(default_factory=list)  # one entry per finished step
    reason: str = ""
    forced: str = ""  # the --force reason when the eval gate was skipped (audited on every promotion)

    @property
    def current(self) -> Step:
        return self.steps[min(self.step, len(self.steps) - 1)]

    @property
    def is_last_step(self) -> bool:
        return self.step >= len(self.steps) - 1

    def weights(self, canary: int | None = None) -> dict[str, int]:
        """The route's weights with the canary at ``canary`` % (default: the current step's)."""
        share = self.current.weight if canary is None else canary
        return {self.stable_target: 100 - share, self.canary_target: share}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RolloutState:
        values = dict(data)
        values["steps"] = [Step(**s) for s in values.get("steps", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})
