"""Build the reference model: tokenizer, a small Llama, a short pretraining run, then save.

A flat recipe that reads top to bottom. It imports torch and transformers, so callers that only need
the cache (``llmops.models.reference``) import this module lazily; by default it runs in a child
process (:mod:`llmops.models.build_process` says why).

Determinism: the tokenizer is trained on seeded corpus text; weights are initialised under
``torch.manual_seed(seed)`` (inside ``fork_rng``, so the caller's RNG is untouched); batches are drawn
from a seeded ``torch.Generator``. The same spec on the same software stack and CPU type therefore gives
byte-identical files (tested). Two choices keep it fast:

* ``torch.use_deterministic_algorithms`` is not used: the CPU ops this model needs are deterministic
  already, and the flag makes transformers fall back from SDPA to eager attention (~3x slower here).
* Threads (:func:`build_threads`): all cores (at most 8) when OpenMP waits passively, else all but one.
  With OpenMP's default active waiting, two threads on the 2-core machine took 0.3 s a step when it was
  idle but 3-11 s when another process kept one core busy (each thread spins waiting for the other); one
  thread took ~1 s either way; two threads with ``OMP_WAIT_POLICY=PASSIVE`` took 0.4-1.2 s under the same
  load. Weights came out bit-identical with 1 and 2 threads, so the choice does not change the files.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from llmops.errors import ModelError
from llmops.models.corpus import pretraining_texts
from llmops.models.spec import Progress, ReferenceSpec
from llmops.models.tokenizer import train_tokenizer
from llmops.models.torch_threads import torch_threads

#: More threads only add synchronisation overhead for a model this small.
MAX_THREADS = 8


@dataclass(frozen=True)
class PretrainResult:
    params: int
    start_loss: float
    end_loss: float
    train_seconds: float


def build_threads() -> int:
    """``OMP_NUM_THREADS`` if set; all cores with passive OpenMP waiting; else all cores but one.

    ``OMP_WAIT_POLICY`` only counts if it was set before torch loaded OpenMP, i.e. in the environment
    this process started with (as :mod:`llmops.models.build_process` does).
    """
    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    cores = os.cpu_count() or 1
    passive = os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE"
    return max(1, min(cores if passive else cores - 1, MAX_THREADS))


def _model_config(spec: ReferenceSpec, tokenizer: PreTrainedTokenizerFast) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=spec.vocab_size,
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_heads,
        head_dim=spec.head_dim,
        max_position_embeddings=spec.max_position_embeddings,
        tie_word_embeddings=spec.tie_word_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        dtype="float32",
    )  # attention: transformers' default, SDPA (see the module docstring)


def _token_stream(texts: list[str], tokenizer: PreTrainedTokenizerFast) -> torch.Tensor:
    """All documents' ids, concatenated (documents carry their own bos/eos)."""
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return torch.tensor([i for ids in encoded for i in ids], dtype=torch.long)


def _lr_at(step: int, spec: ReferenceSpec) -> float:
    warmup = max(1, int(spec.steps * spec.warmup_fraction))
    if step < warmup:
        return spec.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, spec.steps - warmup)
    cosine = 0.5 * (1 + math.cos(math.pi * progress))
    return spec.lr * (spec.min_lr_ratio + (1 - spec.min_lr_ratio) * cosine)


def _train(
    model: LlamaForCausalLM, stream: torch.Tensor, spec: ReferenceSpec, progress: Progress | None
) -> list[float]:
    gen = torch.Generator().manual_seed(spec.seed)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": spec.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=spec.lr,
        betas=(0.9, 0.95),
    )
    model.train()
    losses: list[float] = []
    span = stream.numel() - spec.seq_len
    for step in range(spec.steps):
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, spec)
        starts = torch.randint(0, span, (spec.batch_size,), generator=gen)
        batch = torch.stack([stream[s : s + spec.seq_len] for s in starts.tolist()])
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), spec.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(float(step + 1), float(spec.steps))
    model.eval()
    return losses


def build_into(folder: Path, spec: ReferenceSpec, progress: Progress | None = None) -> PretrainResult:
    """Train the tokenizer and model described by ``spec`` and save both into ``folder`` (must be empty)."""
    texts = pretraining_texts(spec.corpus_docs, spec.seed)
    tokenizer = train_tokenizer(texts, vocab_size=spec.vocab_size, model_max_length=spec.max_position_embeddings)
    stream = _token_stream(texts, tokenizer)
    if stream.numel() <= spec.seq_len:
        raise ModelError(f"corpus too small: {stream.numel()} tokens for sequences of {spec.seq_len}")
    # seed weight init without disturbing the caller's RNG
    with torch_threads(build_threads()), torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = LlamaForCausalLM(_model_config(spec, tokenizer))
        model.generation_config = GenerationConfig(
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        started = time.monotonic()
        losses = _train(model, stream, spec, progress)
        seconds = time.monotonic() - started
        model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    tail = losses[-min(10, len(losses)) :]
    return PretrainResult(
        params=sum(p.numel() for p in model.parameters()),
        start_loss=losses[0],
        end_loss=sum(tail) / len(tail),
        train_seconds=seconds,
    )
