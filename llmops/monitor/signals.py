"""The monitoring signals of one window: the one entry point the runner calls.

:func:`input_signals` compares the route's captured inputs with the reference (route-wide, target ``*``):
``input_drift``, ``input.length``, ``input.non_letter_share``. :func:`output_signals` does the rest for
one target: ``output_drift``, the ``output.*`` descriptors, ``field.NAME``, ``quality.*``, ``latency.*`` and
``errors.rate``. Pure functions of their arguments: no log, registry or network I/O; the same ``seed``
gives the same results. The methods are in :mod:`~llmops.monitor.drift`,
:mod:`~llmops.monitor.descriptors`, :mod:`~llmops.monitor.quality` and :mod:`~llmops.monitor.latency`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from llmops.config.monitor import SignalsSpec
from llmops.monitor.descriptors import output_descriptors, text_descriptors
from llmops.monitor.drift import embedding_drift
from llmops.monitor.embeddings import Embedder
from llmops.monitor.latency import latency_signals
from llmops.monitor.levels import ALL_TARGETS, SignalResult
from llmops.monitor.quality import quality_signals

_OUTPUT_SEED_OFFSET = 7919  # output drift draws its own subsample and permutations


@dataclass(frozen=True)
class WindowSample:
    """One window of one target (or ``*``): captured texts (a bounded, seeded sample), every request's
    latency, TTFT (streams) and status, and the feedback that arrived for the window's requests."""

    target: str
    inputs: Sequence[str] = ()
    outputs: Sequence[str] = ()
    latencies_ms: Sequence[float] = ()
    ttfts_ms: Sequence[float] = ()
    statuses: Sequence[int] = ()
    corrections: Sequence[tuple[str, str]] = field(default_factory=tuple)  # (output, correction)
    feedback_scores: Sequence[float] = ()


@dataclass(frozen=True)
class ReferenceSample:
    """What live traffic is compared with; no outputs (no eval record) makes output drift insufficient."""

    inputs: Sequence[str]
    outputs: Sequence[str] = ()


def input_signals(
    ref: ReferenceSample, live: WindowSample, spec: SignalsSpec, embedder: Embedder, *, seed: int
) -> list[SignalResult]:
    """``input_drift`` and the ``input.*`` descriptors (target ``*``); disabled groups are left out."""
    results: list[SignalResult] = []
    if spec.input_drift.enabled:
        results.append(
            embedding_drift(
                "input_drift", ref.inputs, live.inputs, spec.input_drift, embedder, seed=seed, target=ALL_TARGETS
            )
        )
    if spec.descriptors.enabled:
        results += text_descriptors("input", ref.inputs, live.inputs, spec.descriptors, target=ALL_TARGETS)
    return results


def output_signals(
    ref: ReferenceSample, live: WindowSample, spec: SignalsSpec, embedder: Embedder, *, seed: int
) -> list[SignalResult]:
    """``output_drift``, ``output.*``, ``field.NAME``, ``quality.*``, ``latency.*`` and ``errors.rate``
    for ``live.target``; disabled groups are left out."""
    target = live.target
    results: list[SignalResult] = []
    if spec.output_drift.enabled:
        results.append(
            embedding_drift(
                "output_drift", ref.outputs, live.outputs, spec.output_drift, embedder,
                seed=seed + _OUTPUT_SEED_OFFSET, target=target,
            )
        )  # fmt: skip
    if spec.descriptors.enabled:
        results += output_descriptors(ref.outputs, live.outputs, spec.descriptors, target=target)
    if spec.quality.enabled:
        results += quality_signals(live.outputs, live.corrections, live.feedback_scores, spec.quality, target=target)
    if spec.latency.enabled:
        results += latency_signals(live.latencies_ms, live.ttfts_ms, live.statuses, spec.latency, target=target)
    return results
