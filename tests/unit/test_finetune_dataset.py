"""Rows → messages → tokens: assistant-only labels, prompt rows through a prompt spec, line-numbered errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llmops.errors import ModelError, ValidationFailed
from llmops.finetune.dataset import IGNORE_INDEX, assistant_spans, build_examples, to_hf_dataset, tokenize
from llmops.finetune.rows import read_rows
from llmops.prompts.spec import PromptSpec, load_spec

REPO = Path(__file__).resolve().parents[2]


def triage_spec() -> PromptSpec:
    return load_spec(REPO / "prompts" / "support-triage.yaml")


def test_labels_keep_only_assistant_turns(tiny_tokenizer: Any) -> None:
    tok = tiny_tokenizer
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Where is my parcel?"},
        {"role": "assistant", "content": "On its way."},
        {"role": "user", "content": "Thanks!"},
        {"role": "assistant", "content": "You are welcome."},
    ]
    ids, labels = tokenize(tok, messages)
    assert len(ids) == len(labels)
    kept = [i for i, label in zip(ids, labels, strict=True) if label != IGNORE_INDEX]
    text = tok.decode(kept)
    assert text.count("<|eos|>") == 2  # each assistant turn ends with its end-of-turn token, which is learned
    assert "On its way." in text and "You are welcome." in text
    assert "parcel" not in text and "Thanks" not in text and "Be brief" not in text
    # labels equal ids where kept
    assert all(label in (IGNORE_INDEX, i) for i, label in zip(ids, labels, strict=True))


def test_prompt_rows_are_rendered_through_the_prompt_spec(
    tmp_path: Path, tiny_tokenizer: Any, write_jsonl: Callable[..., Path]
) -> None:
    tok = tiny_tokenizer
    path = write_jsonl(tmp_path / "d.jsonl", [{"variables": {"message": "I was charged twice"}, "target": "{}"}])
    [example] = build_examples(read_rows(path), tok, triage_spec(), 3)
    assert [m["role"] for m in example.messages] == ["system", "user", "assistant"]
    assert example.messages[1]["content"] == "I was charged twice"
    assert example.messages[0]["content"].startswith("You triage support tickets.")
    assert example.prompt_messages == example.messages[:2]
    assert tok.decode([i for i, lab in zip(example.input_ids, example.labels, strict=True) if lab >= 0]) == (
        "{}<|eos|>\n"
    )
    ds = to_hf_dataset([example])
    assert ds.column_names == ["input_ids", "labels", "line"] and ds[0]["line"] == 1


def test_rows_that_do_not_render_are_reported_with_their_lines(
    tmp_path: Path, tiny_tokenizer: Any, write_jsonl: Callable[..., Path]
) -> None:
    path = write_jsonl(
        tmp_path / "d.jsonl",
        [
            {"variables": {"message": "ok"}, "target": "x"},
            {"variables": {"msg": "typo"}, "target": "x"},
            {"variables": {"message": 42}, "target": "x"},
        ],
    )
    with pytest.raises(ValidationFailed) as info:
        build_examples(read_rows(path), tiny_tokenizer, triage_spec(), 1)
    lines = [p.line for p in info.value.problems]
    assert lines == [2, 3]
    assert "unknown variable" in str(info.value) and f"{path}:2 [variables]" in str(info.value)


def test_prompt_rows_without_a_prompt_are_refused(
    tmp_path: Path, tiny_tokenizer: Any, write_jsonl: Callable[..., Path]
) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"variables": {"message": "hi"}, "target": "x"}])
    with pytest.raises(ValidationFailed, match="prompt rows need a prompt version"):
        build_examples(read_rows(path), tiny_tokenizer, None, None)


def test_a_template_that_rewrites_history_is_refused(tiny_tokenizer: Any) -> None:
    tok = tiny_tokenizer
    original = tok.chat_template
    try:
        # a template that renders the last message differently from earlier ones breaks the prefix rule
        tok.chat_template = (
            "{% for m in messages %}{{ m['content'] if loop.last else m['content'] | upper }}{% endfor %}"
        )
        with pytest.raises(ModelError, match="prefix"):
            assistant_spans(tok, [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])
    finally:
        tok.chat_template = original
