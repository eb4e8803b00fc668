"""Gates: absolute thresholds and limits relative to the production release. NaN never passes."""

from __future__ import annotations

import math
from dataclasses import dataclass

from llmops.evals.spec import Gate


@dataclass(frozen=True)
class GateResult:
    metric: str
    rule: str  # e.g. ">= 0.9", "<= production + 50"
    candidate: float
    production: float | None
    passed: bool

    def line(self) -> str:
        prod = "" if self.production is None else f"  production {self.production:.4g}"
        verdict = "PASS" if self.passed else "FAIL"
        return f"{verdict}  {self.metric}: candidate {self.candidate:.4g} {self.rule}{prod}"


def _ok(value: float) -> bool:
    return value is not None and not math.isnan(value)


def evaluate(gates: list[Gate], candidate: dict[str, float], production: dict[str, float] | None) -> list[GateResult]:
    """One result per bound of every gate. A relative bound with no production numbers raises ValueError."""
    out: list[GateResult] = []
    for gate in gates:
        value = candidate.get(gate.metric, float("nan"))
        if gate.min is not None:
            out.append(GateResult(gate.metric, f">= {gate.min:g}", value, None, _ok(value) and value >= gate.min))
        if gate.max is not None:
            out.append(GateResult(gate.metric, f"<= {gate.max:g}", value, None, _ok(value) and value <= gate.max))
        if gate.relative:
            if production is None and gate.when_no_production == "skip":
                out.append(
                    GateResult(gate.metric, "vs production: skipped (no production release yet)", value, None, True)
                )
                continue
            if production is None:
                raise ValueError(
                    f"gate on {gate.metric} is relative to production, but there is no production baseline"
                )
            base = production.get(gate.metric, float("nan"))
            if gate.max_drop_vs_production is not None:
                limit = base - gate.max_drop_vs_production
                passed = _ok(value) and _ok(base) and value >= limit
                out.append(
                    GateResult(gate.metric, f">= production - {gate.max_drop_vs_production:g}", value, base, passed)
                )
            if gate.max_rise_vs_production is not None:
                limit = base + gate.max_rise_vs_production
                passed = _ok(value) and _ok(base) and value <= limit
                out.append(
                    GateResult(gate.metric, f"<= production + {gate.max_rise_vs_production:g}", value, base, passed)
                )
    return out
