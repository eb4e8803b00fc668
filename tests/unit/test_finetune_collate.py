"""Batching: best-fit packing with position restarts, padding, and the packed-positions probe."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llmops.finetune.collate import (
    PackedCollator,
    PaddedCollator,
    choose_collator,
    pack_rows,
    supports_packed_positions,
)
from llmops.finetune.dataset import IGNORE_INDEX


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=40), st.integers(min_value=1, max_value=512)
)
def test_pack_rows_places_every_example_once_within_the_limit(lengths: list[int], max_len: int) -> None:
    bins = pack_rows(lengths, max_len)
    placed = sorted(i for b in bins for i in b)
    assert placed == list(range(len(lengths)))
    for b in bins:
        total = sum(lengths[i] for i in b)
        assert total <= max_len or len(b) == 1  # an over-long example sits alone
    assert pack_rows(lengths, max_len) == bins  # deterministic


def features(*seqs: list[int]) -> list[dict[str, list[int]]]:
    # labels: keep everything but the first token, as a stand-in for assistant-only labels
    return [{"input_ids": s, "labels": [IGNORE_INDEX, *s[1:]]} for s in seqs]


def test_packed_collator_restarts_positions_and_masks_boundaries() -> None:
    batch = PackedCollator(pad_id=0, max_len=8)(features([11, 12, 13, 14, 15], [21, 22, 23], [31, 32, 33, 34]))
    assert batch["input_ids"].tolist() == [[11, 12, 13, 14, 15, 21, 22, 23], [31, 32, 33, 34, 0, 0, 0, 0]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 4, 0, 1, 2], [0, 1, 2, 3, 0, 1, 2, 3]]
    labels = batch["labels"].tolist()
    assert labels[0][0] == IGNORE_INDEX and labels[0][5] == IGNORE_INDEX  # no target across a boundary
    assert labels[0][1:5] == [12, 13, 14, 15] and labels[0][6:] == [22, 23]
    assert labels[1][4:] == [IGNORE_INDEX] * 4  # padding segment is never a target
    assert "attention_mask" not in batch  # the positions carry the boundaries


def test_padded_collator_pads_and_masks() -> None:
    batch = PaddedCollator(pad_id=0)(features([1, 2, 3], [4, 5]))
    assert batch["input_ids"].tolist() == [[1, 2, 3], [4, 5, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [[IGNORE_INDEX, 2, 3], [IGNORE_INDEX, 5, IGNORE_INDEX]]
    fixed = PaddedCollator(pad_id=0, pad_to=6)(features([1, 2, 3]))
    assert fixed["input_ids"].shape == (1, 6)


@pytest.fixture(scope="module")
def tiny_llama() -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=128, attn_implementation="sdpa",
    )  # fmt: skip
    return LlamaForCausalLM(config).eval()


class Leaky(torch.nn.Module):
    """A 'model' whose outputs depend on every earlier token, whatever the positions say."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(64, 8)
        self.config = SimpleNamespace(_attn_implementation="sdpa")

    def forward(self, input_ids: torch.Tensor, **_: object) -> SimpleNamespace:
        return SimpleNamespace(logits=self.embed(input_ids).cumsum(dim=1))


def test_probe_tells_models_that_respect_position_boundaries(tiny_llama: torch.nn.Module) -> None:
    sample = list(range(1, 40))
    assert supports_packed_positions(tiny_llama, sample)
    assert not supports_packed_positions(Leaky(), sample)
    _, name = choose_collator(tiny_llama, packing=True, pad_id=0, max_len=64, sample=sample)
    assert name.startswith("packed")
    _, name = choose_collator(Leaky(), packing=True, pad_id=0, max_len=64, sample=sample)
    assert name == "padded to longest"
    _, name = choose_collator(tiny_llama, packing=False, pad_id=0, max_len=64, sample=sample)
    assert name == "padded to longest"


def test_packed_and_padded_batches_give_the_same_loss(tiny_llama: torch.nn.Module) -> None:
    """Packing is an optimisation only: the loss over the same examples is the same."""
    torch.manual_seed(1)
    seqs = [torch.randint(1, 64, (n,)).tolist() for n in (9, 5, 7, 3)]
    feats = features(*seqs)
    packed = PackedCollator(pad_id=0, max_len=16)(feats)
    padded = PaddedCollator(pad_id=0)(feats)
    with torch.no_grad():
        loss_packed = tiny_llama(**packed, use_cache=False).loss
        loss_padded = tiny_llama(**padded, use_cache=False).loss
    assert torch.allclose(loss_packed, loss_padded, atol=1e-5)
