"""Training throughput of the llmops recipe against TRL's SFTTrainer defaults and a padded Trainer + PEFT.

Counted as *real* tokens per second: tokens that are not padding (Trainer's
``include_num_input_tokens_seen="non_padding"``), between the end of the first optimizer step (so
model loading, tokenisation and warm-up are excluded) and the end of the last. Every contender trains
the same model, the same LoRA config (r, alpha, dropout, target modules), the same examples, with the
same per-device batch size and number of optimizer steps:

* ``llmops``         ``llmops.finetune.recipe.train``: fp32 on CPU (precision auto), packed rows,
                     loss on assistant tokens only (logits computed at target positions only);
* ``llmops-gc``      the same with ``gradient_checkpointing: true`` (less memory, more compute);
* ``trl-defaults``   ``trl.SFTTrainer`` with its default ``SFTConfig`` (bf16 autocast, gradient
                     checkpointing, padding to the longest example, completion-only loss), given the
                     data as conversational prompt/completion pairs;
* ``trl-fp32``       the same with ``bf16=False`` only, to show how much of the gap is precision;
* ``trainer-padmax`` transformers ``Trainer`` + PEFT, fp32, every batch padded to ``max_seq_len``.

Each contender runs in a child process so its peak RSS (``ru_maxrss``) is its own. Contenders run in
interleaved rounds and the best round of each is reported, so a busy spell on a shared machine does not
decide the comparison; CPU seconds are reported too.

On a GPU machine (``--random-llama 110``): every contender trains a randomly initialised Llama of
about that many million parameters (the reference tokenizer, built locally: no hub download) on the
GPU; ``llmops`` runs in bf16 (precision auto), TRL with its defaults, and peak GPU memory
(``torch.cuda.max_memory_allocated``) is reported next to RSS.

Usage: python bench/finetune_throughput.py [--steps 12] [--batch-size 8] [--only llmops,trl-defaults]
       python bench/finetune_throughput.py --random-llama 110 --steps 30 --batch-size 16   # on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CONTENDERS = ("llmops", "llmops-gc", "trl-defaults", "trl-fp32", "trainer-padmax")
JOB = REPO / "finetune" / "support-triage.yaml"


def lora_settings() -> dict[str, Any]:
    """The example job's LoRA config (or ``$BENCH_JOB``'s), given to every contender."""
    from llmops.finetune.job import load_job

    lora = load_job(Path(os.environ.get("BENCH_JOB", JOB))).lora
    return {"r": lora.r, "lora_alpha": lora.alpha, "lora_dropout": lora.dropout, "target_modules": lora.target_modules}


def _examples(model_path: str, rows: int) -> tuple[Any, list[Any]]:
    from transformers import AutoTokenizer

    from llmops.finetune.dataset import build_examples
    from llmops.finetune.rows import read_rows
    from llmops.prompts.spec import load_spec

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    spec = load_spec(REPO / "prompts" / "support-triage.yaml")
    data = read_rows(REPO / "finetune" / "data" / "support-triage" / "train.jsonl")
    return tokenizer, build_examples(data, tokenizer, spec, 1)[:rows]


def _meter() -> Any:
    """A callback noting (time, cpu time, real tokens seen) at the end of every step."""
    from transformers import TrainerCallback

    class Meter(TrainerCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.marks: list[tuple[float, float, int]] = []

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.marks.append((time.perf_counter(), time.process_time(), state.num_input_tokens_seen))

    return Meter()


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def random_llama(tokenizer_from: str, millions: int, out: Path) -> str:
    """A randomly initialised Llama of about ``millions`` M parameters, saved with ``tokenizer_from``'s tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_from)
    hidden, inter = 768, 2048
    per_layer = 4 * hidden * hidden + 3 * hidden * inter
    layers = max(2, round((millions * 1e6 - 2 * len(tokenizer) * hidden) / per_layer))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=inter,
        num_hidden_layers=layers,
        num_attention_heads=12,
        num_key_value_heads=12,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    print(
        f"random Llama: {layers} layers, {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters",
        file=sys.stderr,
    )
    return str(out)


def _common_args(out: str, steps: int, batch: int, seed: int) -> dict[str, Any]:
    return {
        "output_dir": out,
        "max_steps": steps,
        "per_device_train_batch_size": batch,
        "gradient_accumulation_steps": 1,
        "seed": seed,
        "report_to": "none",
        "save_strategy": "no",
        "disable_tqdm": True,
        "use_cpu": not _cuda(),
        "include_num_input_tokens_seen": "non_padding",
        "logging_steps": 1000,
    }


def run_llmops(model_path: str, steps: int, batch: int, max_len: int, out: str, *, checkpointing: bool) -> Any:
    from llmops.finetune.recipe import RecipeConfig, train

    tokenizer, examples = _examples(model_path, steps * batch)
    lora = lora_settings()
    cfg = RecipeConfig(
        base_model_path=model_path,
        base_model_label="bench",
        output_dir=Path(out),
        lora_r=lora["r"],
        lora_alpha=lora["lora_alpha"],
        lora_dropout=lora["lora_dropout"],
        target_modules=lora["target_modules"],
        max_steps=steps,
        batch_size=batch,
        max_seq_len=max_len,
        save_steps=10**6,
        gradient_checkpointing=checkpointing,
    )
    meter = _meter()
    train(cfg, tokenizer, examples, extra_callbacks=[meter])
    return meter


def run_trl(model_path: str, steps: int, batch: int, out: str, *, bf16_default: bool) -> Any:
    import datasets
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    tokenizer, examples = _examples(model_path, steps * batch)
    data = datasets.Dataset.from_list(
        [{"prompt": e.prompt_messages, "completion": e.messages[len(e.prompt_messages) :]} for e in examples]
    )
    args = SFTConfig(**_common_args(out, steps, batch, 0), **({} if bf16_default else {"bf16": False}))
    meter = _meter()
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(model_path),
        args=args,
        train_dataset=data,
        processing_class=tokenizer,
        peft_config=LoraConfig(task_type="CAUSAL_LM", **lora_settings()),
        callbacks=[meter],
    )
    trainer.train()
    return meter


def run_padmax(model_path: str, steps: int, batch: int, max_len: int, out: str) -> Any:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

    from llmops.finetune.collate import PaddedCollator
    from llmops.finetune.dataset import to_hf_dataset

    tokenizer, examples = _examples(model_path, steps * batch)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(model_path),
        LoraConfig(task_type="CAUSAL_LM", **lora_settings()),
    )
    collate = PaddedCollator(tokenizer.pad_token_id, pad_to=max_len)
    meter = _meter()
    trainer = Trainer(
        model=model,
        args=TrainingArguments(**_common_args(out, steps, batch, 0), remove_unused_columns=False),
        train_dataset=to_hf_dataset(examples),
        data_collator=lambda feats: collate([{"input_ids": f["input_ids"], "labels": f["labels"]} for f in feats]),
        processing_class=tokenizer,
        callbacks=[meter],
    )
    trainer.train()
    return meter


def child(name: str, model_path: str, steps: int, batch: int, max_len: int) -> dict[str, Any]:
    import torch

    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as out:
        if name in ("llmops", "llmops-gc"):
            meter = run_llmops(model_path, steps, batch, max_len, out, checkpointing=name == "llmops-gc")
        elif name in ("trl-defaults", "trl-fp32"):
            meter = run_trl(model_path, steps, batch, out, bf16_default=name == "trl-defaults")
        elif name == "trainer-padmax":
            meter = run_padmax(model_path, steps, batch, max_len, out)
        else:
            raise SystemExit(f"unknown contender {name}")
    (t0, c0, k0), (t1, c1, k1) = meter.marks[0], meter.marks[-1]
    gpu_peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    return {
        "name": name,
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "peak_gpu_mb": gpu_peak,
        "steps_timed": len(meter.marks) - 1,
        "tokens": k1 - k0,
        "seconds": t1 - t0,
        "cpu_seconds": c1 - c0,
        "tokens_per_s": (k1 - k0) / (t1 - t0),
        "tokens_per_cpu_s": (k1 - k0) / (c1 - c0),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
    }


def _model_path(given: str | None) -> str:
    if given:
        return given
    from llmops.config.workspace import load_workspace
    from llmops.finetune.base_model import resolve_base

    return resolve_base(load_workspace(REPO), "reference").path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model folder (default: the workspace's reference model, built if needed)")
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps per contender (first one untimed)")
    parser.add_argument("--batch-size", type=int, default=4, help="per-device batch (the example job's)")
    parser.add_argument("--max-seq-len", type=int, default=256)
    parser.add_argument("--only", default=",".join(CONTENDERS), help="comma-separated contenders")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the best of each is reported")
    parser.add_argument(
        "--random-llama", type=int, metavar="MILLIONS", help="train a random Llama of ~MILLIONS M params instead"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.child:
        print("RESULT " + json.dumps(child(args.child, args.model, args.steps, args.batch_size, args.max_seq_len)))
        return
    model = _model_path(args.model)
    scratch = tempfile.TemporaryDirectory(prefix="bench-model-")
    if args.random_llama:
        model = random_llama(model, args.random_llama, Path(scratch.name))
    names = args.only.split(",")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for round_ in range(1, args.rounds + 1):  # interleaved, so a busy spell on a shared machine hits everyone
        for name in names:
            cmd = [sys.executable, __file__, "--child", name, "--model", model, "--steps", str(args.steps)]
            cmd += ["--batch-size", str(args.batch_size), "--max-seq-len", str(args.max_seq_len)]
            started = time.monotonic()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if proc.returncode != 0 or line is None:
                print(f"{name}: failed (exit {proc.returncode})\n{proc.stderr[-3000:]}", file=sys.stderr)
                continue
            runs[name].append(json.loads(line.removeprefix("RESULT ")))
            print(f"round {round_} {name}: {time.monotonic() - started:.0f} s", file=sys.stderr)
    # best throughput and lowest peak of each contender's rounds: the least disturbed measurement
    scratch.cleanup()
    results = {
        name: {
            **max(rs, key=lambda r: r["tokens_per_s"]),
            "tokens_per_cpu_s": max(r["tokens_per_cpu_s"] for r in rs),
            "peak_rss_mb": min(r["peak_rss_mb"] for r in rs),
            "peak_gpu_mb": min((r["peak_gpu_mb"] for r in rs if r.get("peak_gpu_mb") is not None), default=None),
        }
        for name, rs in runs.items()
        if rs
    }
    print(
        f"model {model}; {args.steps} steps x batch {args.batch_size}; max_seq_len {args.max_seq_len}; "
        f"best of {args.rounds} interleaved rounds; torch threads {next(iter(results.values()))['threads']}"
    )
    print(f"LoRA (from {os.environ.get('BENCH_JOB', JOB)}): {lora_settings()}")
    print(f"device: {next(iter(results.values()))['device']}")
    print(
        f"{'contender':<16}{'real tok/s':>12}{'tok/cpu-s':>12}{'peak RSS MB':>13}{'peak GPU MB':>13}{'ratio (ours/x)':>16}"
    )
    ours = results.get("llmops")
    for name, r in results.items():
        ratio = f"{ours['tokens_per_s'] / r['tokens_per_s']:.2f}x" if ours else "-"
        gpu = f"{r['peak_gpu_mb']:,.0f}" if r.get("peak_gpu_mb") is not None else "-"
        print(
            f"{name:<16}{r['tokens_per_s']:>12,.0f}{r['tokens_per_cpu_s']:>12,.0f}{r['peak_rss_mb']:>13,.0f}"
            f"{gpu:>13}{ratio:>16}"
        )
    trl = results.get("trl-defaults")
    for name in ("llmops", "llmops-gc"):
        mine = results.get(name)
        if mine and trl:
            speed = mine["tokens_per_s"] / trl["tokens_per_s"]
            memory = "peak_gpu_mb" if mine.get("peak_gpu_mb") is not None else "peak_rss_mb"
            memory_ok = mine[memory] <= trl[memory]
            verdict = "met" if speed >= 1.5 and memory_ok else "NOT met"
            print(
                f"target for {name} (>= 1.5x TRL defaults, peak {memory[5:8].upper()} memory no higher): {verdict} "
                f"({speed:.2f}x, {mine[memory]:.0f} vs {trl[memory]:.0f} MB)"
            )


if __name__ == "__main__":
    main()
