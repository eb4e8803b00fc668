"""Canary analysis on seeded synthetic request streams: false aborts, abort rates, requests to the verdict.

Drives the real analysis code (:func:`llmops.rollout.checks.analyse` and :func:`~llmops.rollout.checks.step_verdict`,
checks ``error_rate``, ``latency`` and ``json_validity`` at their default tolerances, confidence 0.98) on
synthetic traffic, and judges the very same streams (same seeds) by a fixed-threshold rule in Flagger's style.

A simulated rollout: steps 10 / 50 / 100 % canary, each with ``min_samples`` 100 per arm and a minimum duration
of ``--step-requests`` requests (default 3,000: 30 s at 100 requests/s, the example spec's ``min_duration``);
traffic split at random by the step's weight; a look every 20 canary requests (the controller's
``interval_s``). At 100 % there is no stable traffic: the canary is compared with the previous step's stable
window, as the controller does. Streams per request: latency lognormal (median 400 ms, sigma 0.35; failed
requests have none), error Bernoulli (stable 1%), a captured answer for every request that parses as JSON with
probability 98% (stable). Canary effects: none (equal to stable); error rate 1% -> 6%; every latency x1.3
(p95 +30%); JSON validity 98% -> 90%.

Flagger-style rule (the baseline): every 20 canary requests, thresholds on the canary alone over the last
``--flagger-windows`` canary requests (Flagger reads a metric over its ``interval``: 20 is one look, 100 reads
five; both are shown): error rate <= 2%, p95 <= 1.25 x the stable's p95 measured on 2,000
requests before the rollout, JSON validity >= 96%; a look with any metric over its threshold is a failed
check, and the rollout aborts at ``--flagger-threshold`` (2) failed checks (Flagger's ``threshold``).
``flagger-mid-100`` is the same rule with looser thresholds, halfway between the stable's values and the bad
canaries' (error 3.5%, p95 x1.15, JSON 94%) over 100 canary requests: what tuning the thresholds buys.

Also a table of canary requests to the abort by effect size and canary share (one step held at a fixed
share until the abort or ``--cap`` canary requests): median over the aborted runs and the share aborted.

Targets (issue 14): equal canary <= 5% false aborts over 200 rollouts; error 1% -> 6% aborted in >= 95% with a
median <= 400 canary requests; latency x1.3 and JSON 98% -> 90% aborted in >= 95%.

Run: ``.venv/bin/python bench/rollout_sim.py [--runs 200] [--seed 0] [--json]`` (about 2 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llmops.config.rollout import ChecksSpec, JsonValidityCheck, StepSpec
from llmops.rollout.checks import ArmData, analyse, step_verdict

LOOK = 20  # canary requests between looks
MEDIAN_MS, SIGMA = 400.0, 0.35
VALID, INVALID = '{"intent": "billing", "priority": "high"}', '{"intent": "billing", "priority": '
CONFIDENCE = 0.98
CHECKS = ChecksSpec(json_validity=JsonValidityCheck())  # error_rate + latency (defaults) + json_validity
FLAGGER_ERROR, FLAGGER_P95_RATIO, FLAGGER_JSON = 0.02, 1.25, 0.96
#: a second Flagger-style configuration with thresholds halfway between the stable's values and the bad
#: canaries' (error 3.5%, p95 x1.15, JSON 94%), read over 100 canary requests: fewer false aborts, slower
FLAGGER_MID = (0.035, 1.15, 0.94)


@dataclass(frozen=True)
class Arm:
    """One arm's traffic: error rate, latency multiplier, share of answers that parse as JSON."""

    error: float = 0.01
    latency_x: float = 1.0
    json_valid: float = 0.98


STABLE = Arm()
EFFECTS = {
    "equal": STABLE,
    "error 1% -> 6%": Arm(error=0.06),
    "latency x1.3": Arm(latency_x=1.3),
    "json 98% -> 90%": Arm(json_valid=0.90),
}


@dataclass
class Window:
    """An arm's requests over one step (numpy arrays, appended at each look): per request whether it failed,
    its latency and its captured answer (NaN / None for a failed request)."""

    errors: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    latencies: np.ndarray = field(default_factory=lambda: np.zeros(0))
    outputs: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))

    def add(self, arm: Arm, n: int, rng: np.random.Generator) -> None:
        errors = rng.random(n) < arm.error
        latencies = np.where(errors, np.nan, rng.lognormal(np.log(MEDIAN_MS), SIGMA, n) * arm.latency_x)
        outputs = np.where(rng.random(n) < arm.json_valid, VALID, INVALID).astype(object)
        outputs[errors] = None  # a failed request has no answer
        self.errors = np.concatenate([self.errors, errors])
        self.latencies = np.concatenate([self.latencies, latencies])
        self.outputs = np.concatenate([self.outputs, outputs])

    def data(self) -> ArmData:
        ok = ~self.errors
        return ArmData(errors=self.errors, latencies_ms=self.latencies[ok], outputs=self.outputs[ok], scores=())  # type: ignore[arg-type]


# -- the judges: one call per look, "fail" / "pass" (step over) / None (keep looking) ----------------------
Judge = Callable[[Window, Window, StepSpec, float], str | None]


def ours(seed: int, checks: ChecksSpec = CHECKS) -> Judge:
    def judge(canary: Window, stable: Window, step: StepSpec, elapsed_s: float) -> str | None:
        c, s = canary.data(), stable.data()
        results = analyse(checks, c, s, confidence=CONFIDENCE, min_samples=step.min_samples, seed=seed)
        return step_verdict(results, elapsed_s=elapsed_s, step=step, canary_n=c.requests, stable_n=s.requests)

    return judge


def flagger(
    baseline_p95: float, window: int, threshold: int, checks: ChecksSpec = CHECKS,
    limits: tuple[float, float, float] = (FLAGGER_ERROR, FLAGGER_P95_RATIO, FLAGGER_JSON),
) -> Judge:  # fmt: skip
    """Thresholds (error rate, p95 ratio, JSON share) on the canary's last ``window`` requests, for the metrics
    ``checks`` turns on."""
    failed = [0]
    max_error, max_p95_ratio, min_json = limits

    def judge(canary: Window, stable: Window, step: StepSpec, elapsed_s: float) -> str | None:
        errors = canary.errors[-window:]
        latencies = canary.latencies[-window:][~errors]
        outputs = canary.outputs[-window:][~errors]
        bad = checks.error_rate is not None and errors.mean() > max_error
        if checks.latency is not None:
            bad |= len(latencies) == 0 or float(np.percentile(latencies, 95)) > max_p95_ratio * baseline_p95
        if checks.json_validity is not None:
            bad |= len(outputs) == 0 or float(np.mean(outputs == VALID)) < min_json
        failed[0] += bool(bad)
        if failed[0] >= threshold:
            return "fail"
        return "pass" if elapsed_s >= step.min_duration_s else None

    return judge


# -- one rollout ----------------------------------------------------------------------------------------
def rollout(canary_arm: Arm, seed: int, steps: list[StepSpec], rps: float, judge: Judge) -> tuple[str, int]:
    """("aborted" | "promoted" | "paused", canary requests at the verdict) on the stream of ``seed``."""
    rng = np.random.default_rng(seed)
    total_canary = 0
    previous_stable = Window()
    for step in steps:
        canary, stable, requests = Window(), Window(), 0
        share = step.weight / 100
        while True:
            extra = int(rng.negative_binomial(LOOK, share)) if share < 1 else 0  # stable requests meanwhile
            canary.add(canary_arm, LOOK, rng)
            stable.add(STABLE, extra, rng)
            total_canary += LOOK
            requests += LOOK + extra
            verdict = judge(canary, stable if share < 1 else previous_stable, step, requests / rps)
            if verdict == "fail":
                return "aborted", total_canary
            if verdict == "inconclusive":
                return "paused", total_canary
            if verdict == "pass":
                break
        previous_stable = stable
    return "promoted", total_canary


def baseline_p95(seed: int) -> float:
    """The stable's p95 over 2,000 requests before the rollout (the Flagger rule's reference)."""
    rng = np.random.default_rng(seed + 10_000_000)
    return float(np.percentile(rng.lognormal(np.log(MEDIAN_MS), SIGMA, 2000), 95))


def judges(seed: int, windows: tuple[int, ...], threshold: int, checks: ChecksSpec = CHECKS) -> dict[str, Judge]:
    """Ours and the Flagger-style rule (one per metric window), fresh for one rollout."""
    out = {"ours": ours(seed, checks)}
    for window in windows:
        out[f"flagger-{window}"] = flagger(baseline_p95(seed), window, threshold, checks)
    out["flagger-mid-100"] = flagger(baseline_p95(seed), 100, threshold, checks, FLAGGER_MID)
    return out


def one(task: tuple[Arm, int, list[StepSpec], float, tuple[int, ...], int]) -> dict[str, tuple[str, int]]:
    arm, seed, steps, rps, windows, threshold = task
    return {name: rollout(arm, seed, steps, rps, judge) for name, judge in judges(seed, windows, threshold).items()}


def one_share(task: tuple[Arm, ChecksSpec, int, float, int, tuple[int, ...], int]) -> dict[str, tuple[str, int]]:
    """One step held at ``share`` until the abort or ``cap`` canary requests."""
    arm, checks, seed, share, cap, windows, threshold = task
    # at 1 request/s, min_duration = cap / share seconds: the step ends after about ``cap`` canary requests
    step = StepSpec(weight=round(share * 100), min_duration=f"{cap / share:.0f}s", max_duration="30d")
    return {name: rollout(arm, seed, [step], 1.0, j) for name, j in judges(seed, windows, threshold, checks).items()}


def summary(outcomes: list[tuple[str, int]]) -> dict[str, Any]:
    aborted = [n for outcome, n in outcomes if outcome == "aborted"]
    return {
        "runs": len(outcomes),
        "abort_rate": len(aborted) / len(outcomes),
        "median_to_abort": statistics.median(aborted) if aborted else None,
        "median_to_verdict": statistics.median(n for _, n in outcomes),
        "paused": sum(outcome == "paused" for outcome, _ in outcomes),
    }


def table_cells() -> dict[str, tuple[Arm, ChecksSpec]]:
    """Rows of the effect x share table, each judged by its own check alone (so a row isolates one check)."""
    errors, latency, json_ = (
        ChecksSpec(latency=None),
        ChecksSpec(error_rate=None),
        ChecksSpec(error_rate=None, latency=None, json_validity=JsonValidityCheck()),
    )
    return {
        **{f"error +{d * 100:g} pts": (Arm(error=0.01 + d), errors) for d in (0.0, 0.01, 0.02, 0.05, 0.10)},
        **{f"latency x{x:g}": (Arm(latency_x=x), latency) for x in (1.0, 1.1, 1.2, 1.3, 1.5)},
        **{f"json -{d * 100:g} pts": (Arm(json_valid=0.98 - d), json_) for d in (0.0, 0.04, 0.08)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="rollouts per effect")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--step-requests", type=int, default=3000, help="min_duration of a step, in requests")
    parser.add_argument("--table-runs", type=int, default=30, help="runs per cell of the effect x share table")
    parser.add_argument("--cap", type=int, default=1000, help="canary requests per table run")
    parser.add_argument("--flagger-windows", type=int, nargs="+", default=[20, 100], help="metric windows")
    parser.add_argument("--flagger-threshold", type=int, default=2, help="failed checks before the abort")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    rps = 100.0
    windows, threshold = tuple(args.flagger_windows), args.flagger_threshold
    steps = [StepSpec(weight=w, min_duration=f"{args.step_requests / rps:g}s", min_samples=100) for w in (10, 50, 100)]
    started = time.perf_counter()
    tasks = [(arm, args.seed + i, steps, rps, windows, threshold) for arm in EFFECTS.values() for i in range(args.runs)]
    shares = (0.05, 0.10, 0.25)
    cells = table_cells()
    cell_tasks = [(arm, checks, args.seed + 1_000_000 + i, share, args.cap, windows, threshold)
                  for arm, checks in cells.values() for share in shares for i in range(args.table_runs)]  # fmt: skip
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        results = list(pool.map(one, tasks, chunksize=2))
        cell_results = list(pool.map(one_share, cell_tasks, chunksize=2))
    names = list(results[0])
    figures: dict[str, Any] = {"settings": vars(args), "rollouts": {}, "table": {}}
    for k, effect in enumerate(EFFECTS):
        chunk = results[k * args.runs : (k + 1) * args.runs]
        figures["rollouts"][effect] = {name: summary([r[name] for r in chunk]) for name in names}
    k = 0
    for cell in cells:
        for share in shares:
            chunk = cell_results[k * args.table_runs : (k + 1) * args.table_runs]
            figures["table"].setdefault(cell, {})[f"{share:.0%}"] = {
                name: summary([r[name] for r in chunk]) for name in names
            }
            k += 1
    figures["wall_s"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        render(figures, args)


def _cell(s: dict[str, Any]) -> str:
    median = "-" if s["median_to_abort"] is None else f"{s['median_to_abort']:.0f}"
    return f"{median} ({s['abort_rate']:.0%})"


def render(figures: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"{args.runs} rollouts per canary: steps 10/50/100 % of {args.step_requests} requests each (min_samples 100), "
          f"a look every {LOOK} canary requests; Flagger-style threshold {args.flagger_threshold} failed checks")  # fmt: skip
    print(f"\n{'canary':<17} {'judge':<12} {'aborted':>8} {'median canary requests to abort':>32} {'paused':>7}")
    for effect, by_judge in figures["rollouts"].items():
        for name, s in by_judge.items():
            median = "-" if s["median_to_abort"] is None else f"{s['median_to_abort']:.0f}"
            print(f"{effect:<17} {name:<12} {s['abort_rate']:>8.1%} {median:>32} {s['paused']:>7}")
    first = next(iter(figures["table"].values()))
    names = list(next(iter(first.values())))
    print(f"\ncanary requests to the abort at a fixed canary share: median (share of {args.table_runs} runs aborted "
          f"within {args.cap}); each row judged by its own check")  # fmt: skip
    for share in first:
        print(f"\ncanary share {share}")
        print(f"{'effect':<16}" + "".join(f"{name:>15}" for name in names))
        for cell, by_share in figures["table"].items():
            print(f"{cell:<16}" + "".join(f"{_cell(by_share[share][name]):>15}" for name in names))
    print(f"\nwall time {figures['wall_s']} s")


if __name__ == "__main__":
    main()
