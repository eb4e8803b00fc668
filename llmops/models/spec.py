"""What defines a reference model build, and its config hash.

Why a step count and not a time budget: the number of optimizer steps a time budget buys depends on
the machine, so two machines (or two runs on a busy one) would build different weights under the same
settings. A fixed ``steps`` makes the build a pure function of this spec (on one software stack).
:data:`DEFAULT_STEPS` (1,000 steps of 8 x 256 tokens) and the defaults below are the point chosen in
``bench/reference_tradeoff.py`` (README "Reference base model" has the table): on the worked example's
held-out split (phrasings, names and products never trained on) the example job's 1,500-step LoRA scores
0.835-0.895 exact match over four fine-tune seeds (0.895 with the job's seed). A 1,024-token vocabulary had
no token for most label words and misspelled them; 300 or 500 pretraining steps left intent on unseen
phrasings at 0.3-0.8, and 1,500 did not beat 1,000 (one seed); wider models (hidden 192, 256) cost 2-3x the
compute per token, which the demo's time budget rules out. The build takes 3.5-5.5 min on a 2-core x86_64
machine (0.2-0.3 s a step idle), which is why the package ships it (:mod:`llmops.models.shipped`).

The config hash covers every field, the build format version, the chat template and a fingerprint of
the corpus text, so changing any of them lands in a new cache folder instead of silently reusing an
old model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from llmops.models.chat_template import CHAT_TEMPLATE, SPECIAL_TOKENS
from llmops.models.corpus import pretraining_texts

#: Bump when the build code changes what it produces for the same spec.
BUILD_FORMAT = 1
DEFAULT_STEPS = 1000
#: Build progress callback: ``progress(steps_done, steps_total)``.
Progress = Callable[[float, float], None]


@dataclass(frozen=True)
class ReferenceSpec:
    """Every input of a reference model build (architecture, data, optimisation)."""

    seed: int = 0
    steps: int = DEFAULT_STEPS
    # architecture: a small Llama; head_dim = hidden_size / num_heads = 64 (vLLM's CPU attention needs it)
    vocab_size: int = 2048
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 2
    intermediate_size: int = 344
    max_position_embeddings: int = 512
    tie_word_embeddings: bool = True
    # data
    corpus_docs: int = 8000
    seq_len: int = 256
    batch_size: int = 8
    # optimisation: AdamW, linear warmup then cosine decay to min_lr_ratio * lr
    lr: float = 3e-3
    warmup_fraction: float = 0.1
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    grad_clip: float = 1.0

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if self.hidden_size % self.num_heads:
            raise ValueError("hidden_size must be a multiple of num_heads")
        if self.seq_len > self.max_position_embeddings:
            raise ValueError("seq_len must not exceed max_position_embeddings")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def config_hash(self) -> str:
        """Hex sha256 of everything that determines the built files (see the module docstring)."""
        corpus = hashlib.sha256()
        for text in pretraining_texts(self.corpus_docs, self.seed):
            corpus.update(text.encode("utf-8") + b"\0")
        payload = {
            "build_format": BUILD_FORMAT,
            "spec": self.as_dict(),
            "chat_template": CHAT_TEMPLATE,
            "special_tokens": list(SPECIAL_TOKENS),
            "corpus_sha256": corpus.hexdigest(),
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()
