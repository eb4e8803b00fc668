"""Detection figure (3) of issue 13: a release that answers ``urgent`` 40% more often raises output drift.

20 seeded windows of 500 requests whose answers say ``urgent`` 1.4 times as often as the reference (the
example's training answers): ``field.priority`` alerts in ≥ 95% of them and warns at least in the others,
after the window's Holm correction; ``output_drift`` is reported.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from llmops.config.monitor import DescriptorsSpec, SignalsSpec
from llmops.monitor import synthetic
from llmops.monitor.descriptors import text_descriptors
from llmops.monitor.embeddings import MiniLMEmbedder
from llmops.monitor.multitest import correct_window
from llmops.monitor.signals import ReferenceSample, WindowSample, output_signals

WINDOWS = 20
WINDOW_SIZE = 500
RUN_SEED = 0
SPEC = SignalsSpec(descriptors=DescriptorsSpec(fields=["intent", "priority"]))


def test_release_answering_urgent_40_percent_more_often_raises_priority_drift(
    detection_reference: ReferenceSample,
) -> None:
    tickets = synthetic.in_domain(2000, seed=5)  # only the answers are embedded (a few dozen distinct texts)
    embedder = MiniLMEmbedder()
    reference_share = synthetic.priority_share(list(detection_reference.outputs))
    priority: Counter[str] = Counter()
    output_drift: Counter[str] = Counter()
    shares = []
    for window in range(WINDOWS):
        sample = random.Random(window).sample(tickets, WINDOW_SIZE)
        outputs = synthetic.answers(sample, window, urgent_share=1.4 * reference_share)
        shares.append(synthetic.priority_share(outputs))
        live = WindowSample("canary", inputs=[t.message for t in sample], outputs=outputs)
        window_results = output_signals(detection_reference, live, SPEC, embedder, seed=RUN_SEED)
        # the window's family as the runner builds it: the input descriptors too (input drift is not in it)
        window_results += text_descriptors("input", detection_reference.inputs, live.inputs, SPEC.descriptors,
                                           target="*")  # fmt: skip
        results = {r.signal: r for r in correct_window(window_results, SPEC.descriptors.correction)}
        priority[results["field.priority"].level] += 1
        output_drift[results["output_drift"].level] += 1
    print(
        f"urgent share: reference {reference_share:.3f}, live mean {sum(shares) / len(shares):.3f};"
        f" field.priority levels {dict(priority)}; output_drift levels {dict(output_drift)}"
    )
    assert sum(shares) / len(shares) == pytest.approx(1.4 * reference_share, rel=0.05)
    assert priority["alert"] >= 0.95 * WINDOWS and priority["alert"] + priority["warn"] == WINDOWS
