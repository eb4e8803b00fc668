"""Exact match with greedy decoding: a quick check that a fine-tune learned its task.

Why here and not only in the eval suites: right after training, before anything is served, a user
wants one number on a held-out split ("did it learn?"). The eval suites (``llmops eval run``) do the
full job against a served release; this is the same measurement in-process with transformers
``generate``, on the base model alone or base + a PEFT adapter folder.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmops.config.workspace import Workspace
from llmops.finetune.dataset import Example, Messages, build_examples
from llmops.finetune.rows import read_rows
from llmops.models.base import resolve_base
from llmops.registry import connect, tags

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class ScoreResult:
    """Exact-match accuracy and the answers it was computed from."""

    exact_match: float
    answers: list[str]
    targets: list[str]

    @property
    def n(self) -> int:
        return len(self.targets)

    def field_accuracy(self) -> dict[str, float]:
        """Per-field accuracy when every target is a JSON object (e.g. ``intent`` and ``priority``), else ``{}``.

        An answer that is not a JSON object counts as wrong on every field; extra fields are ignored.
        """
        parsed = [_json_object(t) for t in self.targets]
        targets = [t for t in parsed if t is not None]
        if not targets or len(targets) != len(parsed):
            return {}
        fields = sorted({key for t in targets for key in t})
        hits = dict.fromkeys(fields, 0)
        for answer, target in zip(self.answers, targets, strict=True):
            got = _json_object(answer) or {}
            for key in fields:
                hits[key] += key in got and got[key] == target.get(key)
        return {key: hits[key] / self.n for key in fields}


def _json_object(text: str) -> dict[str, object] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def load_for_generation(base_path: str, adapter_dir: Path | None = None) -> Any:
    """The base model in fp32, with the adapter applied when given (a ``PeftModel``); in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM

    model: Any = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir))
    model.eval()
    return model


def last_answer(messages: Messages) -> str:
    return next(m["content"] for m in reversed(messages) if m["role"] == "assistant")


def greedy_answers(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Messages],
    *,
    max_new_tokens: int = 48,
    batch_size: int = 16,
) -> list[str]:
    """Greedy completions of each prompt (chat template + generation prompt), left-padded in batches."""
    import torch

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    out: list[str] = []
    for start in range(0, len(prompts), batch_size):
        texts = [
            tokenizer.apply_chat_template(list(p), tokenize=False, add_generation_prompt=True)
            for p in prompts[start : start + batch_size]
        ]
        encoded = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        width = max(len(e) for e in encoded)
        ids = torch.tensor([[pad_id] * (width - len(e)) + e for e in encoded], device=device)
        mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in encoded], device=device)
        with torch.no_grad():
            generated = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=pad_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        for row in generated[:, width:]:
            out.append(str(tokenizer.decode(row, skip_special_tokens=True)).strip())
    return out


def exact_match(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[Example],
    *,
    max_new_tokens: int = 48,
    batch_size: int = 16,
) -> ScoreResult:
    """Share of examples whose greedy answer equals the final assistant turn (whitespace-trimmed)."""
    targets = [last_answer(e.messages).strip() for e in examples]
    answers = greedy_answers(
        model, tokenizer, [e.prompt_messages for e in examples], max_new_tokens=max_new_tokens, batch_size=batch_size
    )
    hits = sum(a == t for a, t in zip(answers, targets, strict=True))
    return ScoreResult(hits / len(targets) if targets else 0.0, answers, targets)


def score_file(
    ws: Workspace,
    data: Path,
    *,
    prompt: str | None = None,
    adapter: str | None = None,
    base_model: str | None = None,
    limit: int | None = None,
    fallback_prompt: str | None = None,
) -> tuple[ScoreResult, str]:
    """Exact match on a JSONL file of a workspace; the adapter is fetched from the registry (sha256-checked).

    Defaults come from the adapter's lineage: its base model (``llmops.base_model``) and the prompt
    version it was trained with (``llmops.prompt_version``), then ``fallback_prompt``; the base model
    falls back to the workspace's. Returns the result and a label naming what was scored.
    """
    from transformers import AutoTokenizer

    rows = read_rows(data)
    needs_registry = adapter is not None or prompt is not None or fallback_prompt is not None
    registry = connect(ws) if needs_registry else None
    adapter_dir = None
    label = "the base model"
    base_ref = base_model or ws.settings.models.base_model
    if adapter is not None and registry is not None:
        info = registry.adapters.get(adapter)
        adapter_dir = registry.adapters.fetch(info)
        base_ref = base_model or info.tags.get(tags.BASE_MODEL) or base_ref
        prompt = prompt or info.tags.get(tags.PROMPT_VERSION) or None
        label = f"adapter {info.ref}"
    prompt = prompt or fallback_prompt
    spec, version = None, None
    if prompt is not None and registry is not None:
        found = registry.prompts.get(prompt)
        spec, version = found.spec, found.version
    base = resolve_base(ws, base_ref)
    tokenizer = AutoTokenizer.from_pretrained(base.path)
    examples = build_examples(rows, tokenizer, spec, version)[:limit]
    return exact_match(load_for_generation(base.path, adapter_dir), tokenizer, examples), f"{label} on {base.ref}"
