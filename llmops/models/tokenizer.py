"""Train the reference model's byte-level BPE tokenizer and wrap it for transformers.

Why byte-level BPE: any text (names, emoji, JSON a fine-tune adds later) encodes without unknown
tokens, and 1,024 ids keep the embedding table (and so the model) tiny. The wrapped
``PreTrainedTokenizerFast`` carries the chat template and bos/eos/pad, so ``AutoTokenizer`` and
vLLM load it from the saved folder with no code of ours.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from llmops.models.chat_template import BOS, CHAT_TEMPLATE, EOS, PAD, SPECIAL_TOKENS

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast


def _without_special_tokens(texts: Iterable[str]) -> Iterator[str]:
    """Strip special-token strings so BPE never learns merges that spell them out of plain bytes."""
    for text in texts:
        for token in SPECIAL_TOKENS:
            text = text.replace(token, "\n")
        yield text


def train_tokenizer(texts: Iterable[str], *, vocab_size: int, model_max_length: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer of ``vocab_size`` ids trained on ``texts``; special tokens take ids 0..5.

    The trainer is deterministic for the same input (merges are ranked by count, ties by pair), which
    the reference build relies on for reproducible hashes.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_without_special_tokens(texts), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        chat_template=CHAT_TEMPLATE,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )
