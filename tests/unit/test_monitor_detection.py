"""Detection figure (1) of issue 13: in-distribution windows raise no false alerts.

20 seeded windows of 500 requests of the example domain, each compared with the example's training
inputs and answers (the reference): every signal alerts in at most 5% of them (≤ 1 of 20), the window's
descriptor tests Holm-corrected together as the runner does (:mod:`llmops.monitor.multitest`). The windows
are drawn from a pool of tickets, so the embedder (which caches each text) embeds each once, so the test stays fast.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from llmops.config.monitor import DescriptorsSpec, SignalsSpec
from llmops.models.corpus import Ticket
from llmops.monitor import synthetic
from llmops.monitor.embeddings import MiniLMEmbedder
from llmops.monitor.multitest import correct_window
from llmops.monitor.signals import ReferenceSample, WindowSample, input_signals, output_signals

WINDOWS = 20
WINDOW_SIZE = 500
POOL = 800  # distinct tickets embedded (each window samples 500 of them)
RUN_SEED = 0  # one seed per monitor run (MonitorFile.seed): the reference subsample is embedded once
SPEC = SignalsSpec(descriptors=DescriptorsSpec(fields=["intent", "priority"]))


@pytest.fixture(scope="module")
def pool() -> list[Ticket]:
    return synthetic.in_domain(POOL, seed=2)


def in_distribution_window(pool: list[Ticket], seed: int) -> WindowSample:
    tickets = random.Random(seed).sample(pool, WINDOW_SIZE)
    outputs = synthetic.answers(tickets, seed)
    return WindowSample(
        target="stable",
        inputs=[t.message for t in tickets],
        outputs=outputs,
        latencies_ms=synthetic.latencies_ms(WINDOW_SIZE, seed),
        ttfts_ms=synthetic.latencies_ms(WINDOW_SIZE // 4, seed + 1, median_ms=80.0),
        statuses=[200] * WINDOW_SIZE,
        corrections=[(out, out) for out in outputs[:40]],
        feedback_scores=[1.0] * 40,
    )


def test_in_distribution_windows_alert_at_most_once_per_signal(
    detection_reference: ReferenceSample, pool: list[Ticket], detection_embedder: MiniLMEmbedder
) -> None:
    alerts: Counter[str] = Counter()
    warns: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    for window in range(WINDOWS):
        live = in_distribution_window(pool, seed=window)
        results = input_signals(detection_reference, live, SPEC, detection_embedder, seed=RUN_SEED)
        results += output_signals(detection_reference, live, SPEC, detection_embedder, seed=RUN_SEED)
        results = correct_window(results, SPEC.descriptors.correction)  # as the runner does (Holm)
        for r in results:
            assert r.level != "insufficient_data" or r.signal.startswith("quality.schema"), r
            seen[r.signal] += 1
            alerts[r.signal] += r.level == "alert"
            warns[r.signal] += r.level == "warn"
    print(f"over {WINDOWS} in-distribution windows: alerts {dict(alerts)}; warnings {dict(+warns)}")
    assert seen["input_drift"] == seen["output_drift"] == seen["field.priority"] == WINDOWS
    assert {s: n for s, n in alerts.items() if n > WINDOWS * 0.05} == {}
