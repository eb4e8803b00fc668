"""Embedding drift between a reference and a live sample of texts (``input_drift``, ``output_drift``).

Two views, as Evidently's embedding drift offers them:

* a **domain classifier**: logistic regression telling reference rows from live rows, scored by its
  5-fold stratified cross-validated ROC AUC (0.5: indistinguishable). With a reference sample under
  :data:`SMALL_REFERENCE` rows the AUC must also beat the 95th percentile of the AUCs of the same
  classifier on shuffled labels (run only when the AUC is over the threshold: they can only veto);
* **MMD²** with an RBF kernel (median-heuristic bandwidth) and a permutation p-value, computed on one
  precomputed kernel matrix (every permutation is a weighted quadratic form, vectorised).

Level: ``alert`` when both say drift, ``warn`` when one does, ``ok`` otherwise. Value = AUC, p = MMD p.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score

from llmops.config.monitor import DriftSpec
from llmops.monitor.embeddings import Embedder
from llmops.monitor.levels import Level, SignalResult, insufficient

SMALL_REFERENCE = 1000  # below this many reference rows, the AUC must beat shuffled-label AUCs
SHUFFLES = 10
FOLDS = 5


@dataclass(frozen=True)
class MMDResult:
    mmd2: float
    p_value: float
    bandwidth: float


def subsample(texts: Sequence[str], size: int, rng: np.random.Generator) -> list[str]:
    """At most ``size`` of ``texts``, drawn without replacement (all of them, in order, when they fit)."""
    if len(texts) <= size:
        return list(texts)
    picked = rng.choice(len(texts), size=size, replace=False)
    return [texts[i] for i in np.sort(picked)]


def classifier_auc(x: np.ndarray, y: np.ndarray, seed: int) -> float:
    """Cross-validated ROC AUC of a logistic regression predicting ``y`` (0/1) from ``x``."""
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    scores = cross_val_score(LogisticRegression(solver="liblinear"), x, y, cv=folds, scoring="roc_auc")
    return float(np.mean(scores))


def shuffled_aucs(x: np.ndarray, y: np.ndarray, seed: int, shuffles: int = SHUFFLES) -> list[float]:
    """The AUCs of the same classifier on ``shuffles`` random relabellings (the no-drift baseline)."""
    rng = np.random.default_rng(seed)
    return [classifier_auc(x, rng.permutation(y), seed + 1 + i) for i in range(shuffles)]


def mmd_test(ref: np.ndarray, live: np.ndarray, permutations: int, seed: int) -> MMDResult:
    """Biased MMD² of two samples (RBF kernel, bandwidth from the median pairwise squared distance)
    and its permutation p-value ``(1 + #{permuted ≥ observed}) / (1 + permutations)``."""
    z = np.concatenate([ref, live]).astype(np.float64)
    n, total = len(ref), len(z)
    sq = np.einsum("ij,ij->i", z, z)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (z @ z.T), 0.0)
    off_diagonal = d2[~np.eye(total, dtype=bool)]
    bandwidth = float(np.median(off_diagonal)) or 1.0
    kernel = np.exp(-d2 / bandwidth).astype(np.float32)
    rng = np.random.default_rng(seed)
    labels = np.zeros((permutations + 1, total), dtype=bool)
    labels[0, :n] = True
    for row in range(1, permutations + 1):
        labels[row, rng.permutation(total)[:n]] = True
    weights = np.where(labels, 1.0 / n, -1.0 / (total - n)).astype(np.float32)
    stats = np.einsum("ij,ij->i", weights @ kernel, weights)
    observed = float(stats[0])
    p_value = float((1 + np.sum(stats[1:] >= observed - 1e-7)) / (1 + permutations))
    return MMDResult(mmd2=observed, p_value=p_value, bandwidth=bandwidth)


def embedding_drift(
    signal: str,
    reference: Sequence[str],
    live: Sequence[str],
    spec: DriftSpec,
    embedder: Embedder,
    *,
    seed: int,
    target: str,
) -> SignalResult:
    """The drift of ``live`` texts from ``reference`` texts (each side subsampled to ``spec.sample``)."""
    if min(len(reference), len(live)) < spec.min_samples:
        return insufficient(signal, len(live), spec.min_samples, target=target)
    rng = np.random.default_rng(seed)
    ref_texts = subsample(reference, spec.sample, rng)
    live_texts = subsample(live, spec.sample, rng)
    ref_vecs = embedder.encode(ref_texts)
    live_vecs = embedder.encode(live_texts)
    x = np.concatenate([ref_vecs, live_vecs])
    y = np.concatenate([np.zeros(len(ref_vecs), dtype=int), np.ones(len(live_vecs), dtype=int)])
    auc = classifier_auc(x, y, seed)
    needs_shuffles = len(reference) < SMALL_REFERENCE
    baseline: list[float] = []
    baseline_p95: float | None = None
    auc_drift = auc > spec.auc_alert
    if auc_drift and needs_shuffles:
        baseline = shuffled_aucs(x, y, seed)
        baseline_p95 = float(np.percentile(baseline, 95))
        auc_drift = auc > baseline_p95
    mmd = mmd_test(ref_vecs, live_vecs, spec.permutations, seed)
    mmd_drift = mmd.p_value < spec.p_alert
    level: Level = "alert" if auc_drift and mmd_drift else "warn" if auc_drift or mmd_drift else "ok"
    details = {
        "roc_auc": auc,
        "auc_drift": auc_drift,
        "shuffled_required": needs_shuffles,
        "shuffled_aucs": baseline,
        "shuffled_auc_p95": baseline_p95,
        "mmd2": mmd.mmd2,
        "mmd_p_value": mmd.p_value,
        "mmd_drift": mmd_drift,
        "mmd_bandwidth": mmd.bandwidth,
        "permutations": spec.permutations,
        "reference_samples": len(ref_texts),
        "live_samples": len(live_texts),
        "p_alert": spec.p_alert,
    }
    return SignalResult(
        signal,
        level,
        auc,
        spec.auc_alert,
        len(live),
        statistic="roc_auc",
        p_value=mmd.p_value,
        target=target,
        details=details,
    )
