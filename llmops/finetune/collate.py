"""Batches for the recipe: padding-free packing where the model supports it, padding otherwise.

Why three collators, measured on the 2-core CPU machine with the reference model (16 triage examples
of ~200 tokens per step, fp32): flattening a whole batch into one row of 3,200 tokens ran ~3x slower
than padding, because SDPA on CPU has no variable-length kernel and attends over the full row under a
block-diagonal mask (cost grows with the row length squared). So:

* :class:`PackedCollator` (SDPA/eager attention) packs examples best-fit-decreasing into rows of at
  most ``max_len`` tokens, restarting ``position_ids`` at every example and sending no attention mask,
  so transformers builds a block-diagonal causal mask from the positions: no example sees another, no
  compute is spent on padding inside a row, and rows stay short so attention stays cheap. Rows are
  evened out with one padding segment (its own block, label ``-100``).
* ``DataCollatorWithFlattening`` (transformers) when the model runs FlashAttention: one row per batch
  with ``cu_seq_lens``, the kernel handles variable lengths natively.
* :class:`PaddedCollator` pads to the longest example (or to a fixed length) with an attention mask:
  the fallback for models whose attention ignores ``position_ids`` boundaries.

:func:`supports_packed_positions` decides by experiment rather than by a list of model names: it runs
two short sequences packed and separately and compares the logits.

torch is imported where tensors are made, so the runner and the CLI can import the recipe cheaply.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmops.finetune.dataset import IGNORE_INDEX

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

Features = Sequence[dict[str, Any]]
Collator = Callable[[Features], "dict[str, torch.Tensor]"]


def pack_rows(lengths: Sequence[int], max_len: int) -> list[list[int]]:
    """Best-fit-decreasing bins of example indices, each bin's total length at most ``max_len``
    (an example longer than ``max_len`` gets a bin of its own). Deterministic: ties keep input order."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        best = -1
        for b, free in enumerate(room):
            if lengths[i] <= free and (best < 0 or free < room[best]):
                best = b
        if best < 0:
            bins.append([i])
            room.append(max_len - lengths[i])
        else:
            bins[best].append(i)
            room[best] -= lengths[i]
    return bins


@dataclass(frozen=True)
class PackedCollator:
    """Examples packed into rows of at most ``max_len`` tokens, separated by ``position_ids`` restarts."""

    pad_id: int
    max_len: int

    def __call__(self, features: Features) -> dict[str, torch.Tensor]:
        import torch

        bins = pack_rows([len(f["input_ids"]) for f in features], self.max_len)
        rows: list[tuple[list[int], list[int], list[int]]] = []
        for members in bins:
            ids: list[int] = []
            pos: list[int] = []
            labels: list[int] = []
            for i in members:
                seq = list(features[i]["input_ids"])
                ids += seq
                pos += range(len(seq))
                # the first token of an example has nothing before it in its block: never a target
                labels += [IGNORE_INDEX, *list(features[i]["labels"])[1:]]
            rows.append((ids, pos, labels))
        width = max(len(r[0]) for r in rows)
        batch_ids, batch_pos, batch_labels = [], [], []
        for ids, pos, labels in rows:
            fill = width - len(ids)
            batch_ids.append(ids + [self.pad_id] * fill)
            batch_pos.append(pos + list(range(fill)))
            batch_labels.append(labels + [IGNORE_INDEX] * fill)
        return {
            "input_ids": torch.tensor(batch_ids, dtype=torch.long),
            "position_ids": torch.tensor(batch_pos, dtype=torch.long),
            "labels": torch.tensor(batch_labels, dtype=torch.long),
        }


@dataclass(frozen=True)
class PaddedCollator:
    """Right-padding to the longest example (or to ``pad_to``), with an attention mask."""

    pad_id: int
    pad_to: int | None = None

    def __call__(self, features: Features) -> dict[str, torch.Tensor]:
        import torch

        width = max(len(f["input_ids"]) for f in features)
        if self.pad_to is not None:
            width = max(width, self.pad_to)
        ids, mask, labels = [], [], []
        for f in features:
            seq = list(f["input_ids"])
            fill = width - len(seq)
            ids.append(seq + [self.pad_id] * fill)
            mask.append([1] * len(seq) + [0] * fill)
            labels.append(list(f["labels"]) + [IGNORE_INDEX] * fill)
        return {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "attention_mask": torch.tensor(mask, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
        }


def _dropped_columns(collate: Collator) -> Collator:
    """Strip dataset-only columns (``line``) before a collator that would turn them into tensors."""

    def wrapped(features: Features) -> dict[str, torch.Tensor]:
        return collate([{k: f[k] for k in ("input_ids", "labels")} for f in features])

    return wrapped


def supports_packed_positions(model: PreTrainedModel, sample: Sequence[int], *, atol: float = 1e-3) -> bool:
    """True when the model keeps packed examples apart given only restarting ``position_ids``.

    Runs ``sample``'s two halves packed into one row and the second half alone, and compares the
    second half's logits. A model that ignores the boundaries lets the second half attend to the
    first, and its logits differ.
    """
    import torch

    half = max(2, min(len(sample) // 2, 16))
    first, second = list(sample[:half]), list(sample[half : 2 * half])
    if len(second) < 2:
        return False
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            device = next(model.parameters()).device
            packed = torch.tensor([first + second], device=device)
            positions = torch.tensor([list(range(len(first))) + list(range(len(second)))], device=device)
            # no KV cache: transformers only reads packing from position_ids when there is none (as in training)
            together = model(input_ids=packed, position_ids=positions, use_cache=False).logits[0, len(first) :]
            alone = model(input_ids=torch.tensor([second], device=device), use_cache=False).logits[0]
    finally:
        model.train(was_training)
    return bool(torch.allclose(together.float(), alone.float(), atol=atol, rtol=1e-3))


def choose_collator(
    model: PreTrainedModel, *, packing: bool, pad_id: int, max_len: int, sample: Sequence[int]
) -> tuple[Collator, str]:
    """The collator for this model and setting, and its name (logged as the run's ``batching`` param)."""
    if packing:
        attention = str(getattr(model.config, "_attn_implementation", "") or "")
        if attention.startswith("flash_attention"):
            from transformers import DataCollatorWithFlattening

            flat = DataCollatorWithFlattening(return_flash_attn_kwargs=True, return_position_ids=True)
            return _dropped_columns(flat), "flattened (FlashAttention varlen)"
        if supports_packed_positions(model, sample):
            return _dropped_columns(PackedCollator(pad_id, max_len)), f"packed rows of <= {max_len} tokens"
    return _dropped_columns(PaddedCollator(pad_id)), "padded to longest"
