"""Rows → chat messages → token ids with assistant-only labels → a Hugging Face ``datasets.Dataset``.

Why through the tokenizer's own chat template: the serving engine (vLLM) formats requests with that
same template, so a fine-tune learns exactly the byte layout it will be prompted with. Prompt rows are
first rendered with a registered prompt version (:func:`llmops.prompts.render.render_messages`), the
same function the gateway uses.

Labels are ``-100`` everywhere except on the assistant turns (their text and end-of-turn token), so
the loss counts only what the model is meant to say. The assistant spans are found by rendering each
conversation prefix and taking the character range the assistant turn adds, then mapping characters
to tokens with the fast tokenizer's offsets: this works for any template that renders a prefix of a
conversation as a prefix of the whole, which is true of the common chat templates (and checked).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmops.errors import ModelError, Problem, RenderError, ValidationFailed
from llmops.finetune.rows import ChatRow, Row, RowFile
from llmops.prompts.render import render_messages
from llmops.prompts.spec import PromptSpec

if TYPE_CHECKING:
    import datasets
    from transformers import PreTrainedTokenizerBase

IGNORE_INDEX = -100
Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Example:
    """One tokenized training example and the line it came from."""

    line: int
    messages: Messages
    input_ids: list[int]
    labels: list[int]

    @property
    def n_tokens(self) -> int:
        return len(self.input_ids)

    @property
    def n_target_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE_INDEX)

    @property
    def prompt_messages(self) -> Messages:
        """The conversation up to (not including) its last assistant turn: what a request would send."""
        last = max(i for i, m in enumerate(self.messages) if m["role"] == "assistant")
        return self.messages[:last]


def to_messages(row: Row, prompt: PromptSpec | None, version: int | None) -> Messages:
    """The chat messages of a row; prompt rows are rendered through ``prompt`` (else RenderError)."""
    if isinstance(row.data, ChatRow):
        return [{"role": m.role, "content": m.content} for m in row.data.messages]
    if prompt is None:
        raise RenderError("prompt rows need a prompt version (set `prompt:` in the job, or --prompt)")
    rendered = render_messages(prompt, row.data.variables, version=version)
    return [*rendered, {"role": "assistant", "content": row.data.target}]


def _template(tokenizer: PreTrainedTokenizerBase, messages: Sequence[dict[str, str]], *, gen: bool) -> str:
    text = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=gen)
    assert isinstance(text, str)
    return text


def assistant_spans(tokenizer: PreTrainedTokenizerBase, messages: Messages) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character ranges of its assistant turns."""
    full = _template(tokenizer, messages, gen=False)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = _template(tokenizer, messages[:i], gen=True)
        through = _template(tokenizer, messages[: i + 1], gen=False)
        if not (through.startswith(before) and full.startswith(through)):
            raise ModelError(
                "the base model's chat template does not render a conversation prefix as a prefix of the "
                "whole; cannot find the assistant turns to train on"
            )
        spans.append((len(before), len(through)))
    return full, spans


def tokenize(tokenizer: PreTrainedTokenizerBase, messages: Messages) -> tuple[list[int], list[int]]:
    """Token ids of the templated conversation, and labels that keep only assistant-turn tokens."""
    text, spans = assistant_spans(tokenizer, messages)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = list(enc["input_ids"])
    labels = [
        token if any(start <= begin < end for start, end in spans) else IGNORE_INDEX
        for token, (begin, _) in zip(ids, enc["offset_mapping"], strict=True)
    ]
    return ids, labels


def check_tokenizer(tokenizer: PreTrainedTokenizerBase, model_ref: str) -> None:
    """Refuse a base model we cannot format chats for, before any work starts."""
    if not getattr(tokenizer, "chat_template", None):
        raise ModelError(f"base model {model_ref} has no chat template; fine-tuning needs one")
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(f"base model {model_ref} has no fast tokenizer (needed for token offsets)")


def build_examples(
    rows: RowFile, tokenizer: PreTrainedTokenizerBase, prompt: PromptSpec | None, version: int | None
) -> list[Example]:
    """Every row formatted and tokenized; ValidationFailed lists all rows that cannot be formatted."""
    examples: list[Example] = []
    problems: list[Problem] = []
    for row in rows.rows:
        try:
            messages = to_messages(row, prompt, version)
        except RenderError as exc:
            problems.append(Problem(rows.shown, str(exc), field="variables", line=row.line))
            continue
        ids, labels = tokenize(tokenizer, messages)
        examples.append(Example(row.line, messages, ids, labels))
    if problems:
        raise ValidationFailed(problems)
    return examples


def to_hf_dataset(examples: Sequence[Example]) -> datasets.Dataset:
    """The columns the trainer needs (``input_ids``, ``labels``) plus ``line`` for tracing a row back."""
    import datasets

    columns: dict[str, list[Any]] = {
        "input_ids": [e.input_ids for e in examples],
        "labels": [e.labels for e in examples],
        "line": [e.line for e in examples],
    }
    return datasets.Dataset.from_dict(columns)
