"""The LoRA fine-tuning recipe: transformers ``Trainer`` + PEFT, read top to bottom.

Inputs are a :class:`RecipeConfig` (the job's ``lora:`` and ``training:`` settings as validated, plus
where the base model is and where checkpoints go) and already tokenized examples whose labels mask
everything but the assistant turns (:mod:`llmops.finetune.dataset`); the output is an adapter folder
holding only ``adapter_model.safetensors`` and ``adapter_config.json``. MLflow is not touched here:
per-step metrics leave through the ``on_metrics`` function the caller passes, progress through a
:class:`~llmops.events.Reporter`.

Steps:

1. pick the device and precision (``auto`` = bf16 on GPUs that support it, else fp32: bf16 autocast on
   a CPU without bf16 units ran ~10x slower; with them (AVX-512 bf16) it was no faster for this recipe);
2. load the base model, seed, wrap it in a LoRA adapter (same seed → same initial adapter), or load
   the job's ``init_adapter`` to continue training it;
3. choose batching: padding-free packing where the model supports it (:mod:`llmops.finetune.collate`);
4. build ``TrainingArguments``: checkpoints every ``save_steps`` (marked complete by a callback, so a
   kill mid-save never leaves a checkpoint ``--resume`` would trust), no tqdm, no integrations;
5. train, resuming from a complete checkpoint when asked; SIGTERM saves a checkpoint and stops;
6. compute the final eval loss (token-weighted, on padded batches: the number a reloaded adapter
   reproduces) and save the adapter with safetensors.

The loss is taken on assistant tokens only, and the vocabulary projection is computed only at those
positions (:mod:`llmops.finetune.loss`): the same value as the stock loss, without the logits of the
prompt positions.

torch is imported inside the functions, and the modules that subclass transformers classes
(:mod:`~llmops.finetune.callbacks`, :mod:`~llmops.finetune.loss`) inside :func:`train`: importing this
module (the runner and the CLI do) must stay cheap.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from llmops.errors import FinetuneError
from llmops.events import SILENT, Reporter
from llmops.finetune.collate import PaddedCollator, choose_collator
from llmops.finetune.dataset import IGNORE_INDEX, Example, to_hf_dataset
from llmops.finetune.job import LoraSettings, TrainingSettings
from llmops.finetune.threads import cpu_threads
from llmops.models.torch_threads import torch_threads

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback

    from llmops.finetune.callbacks import MetricsSink

#: the only files an adapter folder holds (vLLM and PEFT load exactly these)
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")


@dataclass(frozen=True)
class RecipeConfig:
    """What the recipe needs: the job's settings (defaults declared once, in :mod:`llmops.finetune.job`)
    and the runtime-only values the runner resolves (base model folder, checkpoint folder, init adapter)."""

    base_model_path: str
    base_model_label: str  # what adapter_config.json names as its base (the job's base_model)
    output_dir: Path  # checkpoints go here
    lora: LoraSettings = field(default_factory=LoraSettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    checkpoint_info: dict[str, str] = field(default_factory=dict)
    init_adapter_dir: Path | None = None  # continue from this adapter's weights instead of a fresh LoRA


@dataclass(frozen=True)
class TrainResult:
    """What a training call did; ``adapter_dir`` is None when a signal stopped it early."""

    steps: int
    max_steps: int
    stopped_by: str | None
    adapter_dir: Path | None
    final_eval_loss: float | None
    train_loss: float | None
    tokens: int
    seconds: float
    batching: str
    precision: str
    device: str
    resumed_from_step: int | None

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


def resolve_precision(precision: str) -> tuple[str, torch.dtype]:
    """``auto`` → bf16 on a CUDA GPU that supports it, else fp32."""
    import torch

    if precision == "auto":
        precision = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    if precision == "bf16" and torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
        raise FinetuneError("precision bf16 was requested but this GPU does not support bf16")
    return precision, (torch.bfloat16 if precision == "bf16" else torch.float32)


def load_lora_model(cfg: RecipeConfig, dtype: torch.dtype) -> PreTrainedModel:
    """The base model wrapped in a LoRA adapter: freshly initialised (deterministic for the seed),
    or ``cfg.init_adapter_dir``'s weights, trainable, with the job's dropout."""
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, set_seed

    set_seed(cfg.training.seed)
    base = AutoModelForCausalLM.from_pretrained(cfg.base_model_path, dtype=dtype)
    if cfg.init_adapter_dir is not None:
        config = LoraConfig.from_pretrained(str(cfg.init_adapter_dir))
        config.lora_dropout = cfg.lora.dropout
        config.base_model_name_or_path = cfg.base_model_path  # the saved label may not be a path PEFT can read
        model = PeftModel.from_pretrained(base, str(cfg.init_adapter_dir), config=config, is_trainable=True)
        return model  # type: ignore[return-value]
    lora = LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=cfg.lora.target_modules,
        task_type="CAUSAL_LM",
        bias="none",
    )
    return get_peft_model(base, lora)  # type: ignore[return-value]


def train(
    cfg: RecipeConfig,
    tokenizer: PreTrainedTokenizerBase,
    train_examples: Sequence[Example],
    eval_examples: Sequence[Example] = (),
    *,
    resume_from: Path | None = None,
    on_metrics: MetricsSink | None = None,
    reporter: Reporter = SILENT,
    extra_callbacks: Sequence[TrainerCallback] = (),
) -> TrainResult:
    """Fine-tune a LoRA adapter on ``train_examples``; see the module docstring for the steps."""
    import torch
    from transformers import PrinterCallback, TrainingArguments

    # heavy (they subclass transformers' Trainer classes): imported here, see the module docstring
    from llmops.finetune.callbacks import MarkCheckpoints, StopOnSignal, Telemetry
    from llmops.finetune.loss import TargetOnlyTrainer

    t = cfg.training
    # 1. device and precision
    precision, dtype = resolve_precision(t.precision)
    device = "cuda" if torch.cuda.is_available() else "cpu"

    # 2. model: base + LoRA, seeded
    model = load_lora_model(cfg, dtype)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad_id is None:
        raise FinetuneError("the tokenizer has neither a pad nor an eos token")

    # 3. batching
    collate, batching = choose_collator(
        model, packing=t.packing, pad_id=pad_id, max_len=t.max_seq_len, sample=train_examples[0].input_ids
    )
    train_ds = to_hf_dataset(train_examples)
    eval_ds = to_hf_dataset(eval_examples) if eval_examples else None

    # 4. arguments: checkpoints, logging every step (metrics are buffered by the sink), no integrations
    evaluate_during = bool(t.eval_steps and eval_ds is not None)
    args = TrainingArguments(
        output_dir=str(cfg.output_dir),
        max_steps=t.max_steps or -1,
        num_train_epochs=t.epochs or 1.0,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.batch_size,
        gradient_accumulation_steps=t.grad_accum,
        learning_rate=t.lr,
        warmup_steps=t.warmup_ratio,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        lr_scheduler_type="linear",
        logging_strategy="steps",
        logging_steps=1,
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=None,  # MarkCheckpoints prunes, and only after marking the newer one complete
        eval_strategy="steps" if evaluate_during else "no",
        eval_steps=t.eval_steps if evaluate_during else None,
        seed=t.seed,
        data_seed=t.seed,
        bf16=precision == "bf16",
        gradient_checkpointing=t.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if t.gradient_checkpointing else None,
        use_cpu=device == "cpu",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        include_num_input_tokens_seen="non_padding",
        log_level="warning",
    )

    # 5. train (resume from a complete checkpoint when given); a signal stops at the next step boundary
    stop = StopOnSignal()
    marker = MarkCheckpoints(cfg.checkpoint_info)
    telemetry = Telemetry(on_metrics, reporter)
    trainer = TargetOnlyTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        data_collator=collate,
        processing_class=tokenizer,
        callbacks=[stop, marker, telemetry, *extra_callbacks],
    )
    trainer.remove_callback(PrinterCallback)  # Telemetry reports progress; no raw log dicts on stdout
    threads = cpu_threads(t.cpu_threads) if device == "cpu" else None
    try:
        with torch_threads(threads):
            trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    finally:
        telemetry.close()
    state = trainer.state
    resumed = int(resume_from.name.rsplit("-", 1)[-1]) if resume_from else None
    result = TrainResult(
        steps=state.global_step,
        max_steps=state.max_steps,
        stopped_by=None,
        adapter_dir=None,
        final_eval_loss=None,
        train_loss=telemetry.last_loss,
        tokens=telemetry.train_tokens,
        seconds=telemetry.train_seconds,
        batching=batching,
        precision=precision,
        device=device,
        resumed_from_step=resumed,
    )
    if stop.stopped_by is not None and state.global_step < state.max_steps:
        return replace(result, stopped_by=stop.stopped_by)

    # 6. final eval loss, then the adapter (safetensors + config only)
    final_eval = eval_loss(model, eval_examples, pad_id, t.batch_size) if eval_examples else None
    if final_eval is not None and on_metrics is not None and trainer.is_world_process_zero():
        on_metrics(state.global_step, {"final_eval_loss": final_eval})
    adapter_dir = cfg.output_dir / "adapter"
    if trainer.is_world_process_zero():
        save_adapter(model, adapter_dir, base_label=cfg.base_model_label)
    return replace(result, adapter_dir=adapter_dir, final_eval_loss=final_eval)


def eval_loss(model: PreTrainedModel, examples: Sequence[Example], pad_id: int, batch_size: int = 16) -> float:
    """Mean next-token loss over every target (assistant) token, batches padded to the longest example.

    Token-weighted, so the value does not depend on how examples are grouped into batches.
    """
    import torch

    was_training = model.training
    model.eval()
    collate = PaddedCollator(pad_id)
    device = next(model.parameters()).device
    total, count = 0.0, 0
    try:
        with torch.no_grad():
            for start in range(0, len(examples), batch_size):
                chunk = examples[start : start + batch_size]
                batch = collate([{"input_ids": e.input_ids, "labels": e.labels} for e in chunk])
                batch = {k: v.to(device) for k, v in batch.items()}
                logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
                labels = batch["labels"][:, 1:]
                loss = torch.nn.functional.cross_entropy(
                    logits[:, :-1].reshape(-1, logits.shape[-1]),
                    labels.reshape(-1),
                    ignore_index=IGNORE_INDEX,
                    reduction="sum",
                )
                total += float(loss)
                count += int((labels != IGNORE_INDEX).sum())
    finally:
        model.train(was_training)
    if count == 0:
        raise FinetuneError("the eval examples hold no target tokens")
    return total / count


def save_adapter(model: PreTrainedModel, folder: Path, *, base_label: str) -> Path:
    """Save only ``adapter_model.safetensors`` + ``adapter_config.json`` into ``folder`` (replaced).

    PEFT also writes a README.md; a Trainer checkpoint adds pickled optimizer state. None of that may
    reach the registry, so the adapter is saved to a scratch folder and only the two files are moved.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".adapter-", dir=folder.parent) as scratch:
        model.save_pretrained(scratch, safe_serialization=True)
        staged = Path(scratch) / "out"
        staged.mkdir()
        for name in ADAPTER_FILES:
            src = Path(scratch) / name
            if not src.is_file():
                raise FinetuneError(f"PEFT did not write {name}")
            shutil.copy2(src, staged / name)
        config_path = staged / "adapter_config.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        config["base_model_name_or_path"] = base_label
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        staged.rename(folder)
    return folder
