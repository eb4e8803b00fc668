"""Detection figure (2) of issue 13: out-of-domain inputs raise input drift.

20 seeded windows of 500 requests, 30% of them out-of-domain tickets (a travel desk, a clinic):
``input_drift`` alerts in ≥ 95% (≥ 19 of 20). The reference is the example's training inputs; windows
are drawn from pools of texts (800 in-domain, 300 out-of-domain), so the caching embedder embeds each once.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from llmops.config.monitor import DescriptorsSpec, SignalsSpec
from llmops.models.corpus import Ticket
from llmops.monitor import synthetic
from llmops.monitor.embeddings import MiniLMEmbedder
from llmops.monitor.signals import ReferenceSample, WindowSample, input_signals

WINDOWS = 20
WINDOW_SIZE = 500
OUT_OF_DOMAIN_SHARE = 0.3
RUN_SEED = 0  # one seed per monitor run (MonitorFile.seed): the reference subsample is embedded once
SPEC = SignalsSpec(descriptors=DescriptorsSpec(fields=["intent", "priority"]))


@pytest.fixture(scope="module")
def pools() -> tuple[list[Ticket], list[str]]:
    return synthetic.in_domain(800, seed=3), synthetic.out_of_domain(300, seed=4)


def test_windows_with_30_percent_out_of_domain_inputs_raise_input_drift(
    detection_reference: ReferenceSample, pools: tuple[list[Ticket], list[str]], detection_embedder: MiniLMEmbedder
) -> None:
    tickets, foreign = pools
    n_foreign = int(WINDOW_SIZE * OUT_OF_DOMAIN_SHARE)
    levels: Counter[str] = Counter()
    for window in range(WINDOWS):
        rng = random.Random(window)
        inputs = [t.message for t in rng.sample(tickets, WINDOW_SIZE - n_foreign)] + rng.sample(foreign, n_foreign)
        rng.shuffle(inputs)
        (drift, *_) = input_signals(
            detection_reference, WindowSample("*", inputs=inputs), SPEC, detection_embedder, seed=RUN_SEED
        )
        assert drift.signal == "input_drift"
        levels[drift.level] += 1
    print("input_drift levels over", WINDOWS, "windows with 30% out-of-domain inputs:", dict(levels))
    assert levels["alert"] >= 0.95 * WINDOWS
