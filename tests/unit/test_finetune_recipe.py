"""The recipe on a tiny random Llama: deterministic for a seed, safetensors-only adapter, stop and resume."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from llmops.finetune.checkpoints import latest_complete
from llmops.finetune.dataset import Example, tokenize
from llmops.finetune.job import LoraSettings, TrainingSettings
from llmops.finetune.recipe import ADAPTER_FILES, RecipeConfig, eval_loss, train


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer: Any) -> Path:
    """A randomly initialised Llama with the tiny tokenizer, saved like a real base model folder."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = tiny_tokenizer
    folder = tmp_path_factory.mktemp("tiny-llama")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=256, pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
    )  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def examples(tok: Any, n: int) -> list[Example]:
    out = []
    for i in range(n):
        messages = [
            {"role": "user", "content": f"Ticket {i}: my parcel is late"},
            {"role": "assistant", "content": "shipping" if i % 2 else "billing"},
        ]
        ids, labels = tokenize(tok, messages)
        out.append(Example(i + 1, messages, ids, labels))
    return out


def config(tiny_model: Path, out: Path, *, lora_dropout: float = 0.05, **training: Any) -> RecipeConfig:
    lora = LoraSettings(r=4, alpha=8, dropout=lora_dropout, target_modules=["q_proj", "v_proj"])
    steps: dict[str, Any] = {"max_steps": 6, "batch_size": 4, "max_seq_len": 64, "save_steps": 2, "lr": 5e-3}
    return RecipeConfig(str(tiny_model), "tiny", out, lora=lora, training=TrainingSettings(**{**steps, **training}))


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "adapter_model.safetensors")


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_same_adapter_and_only_safe_files(tiny_model: Path, tmp_path: Path, tiny_tokenizer: Any) -> None:
    data = examples(tiny_tokenizer, 24)
    first = train(config(tiny_model, tmp_path / "a"), tiny_tokenizer, data, data[:8])
    second = train(config(tiny_model, tmp_path / "b"), tiny_tokenizer, data, data[:8])
    other = train(config(tiny_model, tmp_path / "c", seed=1), tiny_tokenizer, data, data[:8])
    assert first.adapter_dir is not None and second.adapter_dir is not None and other.adapter_dir is not None
    assert sorted(p.name for p in first.adapter_dir.iterdir()) == sorted(ADAPTER_FILES)
    assert same(weights(first.adapter_dir), weights(second.adapter_dir))
    assert not same(weights(first.adapter_dir), weights(other.adapter_dir))
    assert first.final_eval_loss == second.final_eval_loss
    assert first.steps == 6 and first.tokens > 0 and first.batching.startswith("packed")
    config_json = json.loads((first.adapter_dir / "adapter_config.json").read_text())
    assert config_json["base_model_name_or_path"] == "tiny"  # no local path leaks into the registry
    assert set(config_json["target_modules"]) == {"q_proj", "v_proj"}


class SigtermAt(TrainerCallback):  # type: ignore[misc]
    """Sends SIGTERM to this process during a step, as an orchestrator would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if state.global_step + 1 == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_checkpoints_then_resume_matches_an_uninterrupted_run(
    tiny_model: Path, tmp_path: Path, tiny_tokenizer: Any
) -> None:
    tok = tiny_tokenizer
    data = examples(tok, 24)
    straight = train(config(tiny_model, tmp_path / "straight", lora_dropout=0.0), tok, data, data[:8])
    before = signal.getsignal(signal.SIGTERM)
    stopped = train(
        config(tiny_model, tmp_path / "stopped", lora_dropout=0.0), tok, data, data[:8], extra_callbacks=[SigtermAt(3)]
    )
    assert signal.getsignal(signal.SIGTERM) == before  # handler restored
    assert stopped.stopped_by == "SIGTERM" and stopped.steps == 3 and stopped.adapter_dir is None
    checkpoint = latest_complete(tmp_path / "stopped")
    assert checkpoint is not None and checkpoint.name == "checkpoint-3"  # saved at the step it stopped on

    resumed = train(
        config(tiny_model, tmp_path / "stopped", lora_dropout=0.0), tok, data, data[:8], resume_from=checkpoint
    )
    assert resumed.resumed_from_step == 3 and resumed.steps == 6 and resumed.adapter_dir is not None
    assert straight.adapter_dir is not None
    a, b = weights(straight.adapter_dir), weights(resumed.adapter_dir)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)  # resuming continues the same run


def test_eval_loss_counts_target_tokens_only(tiny_model: Path, tiny_tokenizer: Any) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    data = examples(tiny_tokenizer, 6)
    pad = tiny_tokenizer.pad_token_id
    assert abs(eval_loss(model, data, pad, batch_size=1) - eval_loss(model, data, pad, batch_size=4)) < 1e-5


def test_target_only_loss_equals_the_stock_loss(tiny_model: Path, tmp_path: Path, tiny_tokenizer: Any) -> None:
    """Projecting onto the vocabulary only at target positions changes memory and speed, not the loss."""
    from transformers import AutoModelForCausalLM, TrainingArguments

    from llmops.finetune.collate import PackedCollator, PaddedCollator
    from llmops.finetune.loss import TargetOnlyTrainer

    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    trainer = TargetOnlyTrainer(
        model=model, args=TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    )
    feats = [{"input_ids": e.input_ids, "labels": e.labels} for e in examples(tiny_tokenizer, 5)]
    pad = tiny_tokenizer.pad_token_id
    for batch in (PaddedCollator(pad)(feats), PackedCollator(pad, 64)(feats)):
        with torch.no_grad():
            stock = model(**batch, use_cache=False).loss
            ours = trainer.compute_loss(model, dict(batch))
            n_items = int((batch["labels"][:, 1:] != -100).sum())
            scaled = trainer.compute_loss(model, dict(batch), num_items_in_batch=torch.tensor(n_items))
        assert torch.allclose(stock, ours, atol=1e-5) and torch.allclose(stock, scaled, atol=1e-5)
