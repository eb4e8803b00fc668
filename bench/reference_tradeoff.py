"""The reference model trade-off: held-out triage quality against size, pretraining and fine-tuning time.

For each candidate reference model spec: build it (cached by config hash under ``--models``), fine-tune
the worked example's LoRA (``finetune/support-triage.yaml``'s settings, formatted with
``prompts/support-triage.yaml``) for ``--steps`` steps, and score greedy answers on

* the held-out split (``test.jsonl``: phrasings, names and products never used in training),
* the in-pool eval split (``eval.jsonl``: unseen rows written in the training phrasings),

as exact match (intent and priority both right), intent accuracy and priority accuracy; the base model
(no adapter) is scored on the held-out split as the baseline measured in the same run. Prints one row per
candidate and writes each run's answers to ``DIR/NAME/answers-*.jsonl`` for reading the mistakes.

What the figures depend on: scores on the spec, the data and the software stack (one seed of the fine-tune
moves them by 0.03-0.08: compare candidates over several ``--seeds``, not single rows); seconds on the machine and its load (run with
``OMP_NUM_THREADS=1`` to compare candidates side by side on a 2-core machine).

Usage:
  python bench/reference_tradeoff.py --models /tmp/ref-models                     # the default spec
  python bench/reference_tradeoff.py --models /tmp/ref-models --steps 2000 \\
      --spec small:vocab_size=1024,steps=300,corpus_docs=4000 --spec default:
  python bench/reference_tradeoff.py --models /tmp/ref-models --seeds 0,1,2 --no-base  # one row per seed
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from llmops.finetune.dataset import build_examples
from llmops.finetune.job import load_job
from llmops.finetune.recipe import RecipeConfig, train
from llmops.finetune.rows import read_rows
from llmops.finetune.scoring import ScoreResult, exact_match, load_for_generation
from llmops.models.reference import ensure_reference_model
from llmops.models.spec import ReferenceSpec
from llmops.prompts.spec import load_spec

REPO = Path(__file__).resolve().parents[1]


def parse_spec(text: str) -> tuple[str, ReferenceSpec]:
    """``NAME:key=value,key=value`` → (NAME, the spec with those fields replaced)."""
    name, _, settings = text.partition(":")
    types = {f.name: f.type for f in fields(ReferenceSpec)}
    values: dict[str, Any] = {}
    for item in filter(None, settings.split(",")):
        key, _, raw = item.partition("=")
        if key not in types:
            raise SystemExit(f"--spec {text}: unknown field {key!r}; fields: {', '.join(types)}")
        values[key] = {"int": int, "float": float, "bool": lambda v: v == "true"}.get(str(types[key]), str)(raw)
    return name or "default", ReferenceSpec(**values)


def row_scores(result: ScoreResult) -> dict[str, float]:
    accuracy = result.field_accuracy()
    return {
        "exact": result.exact_match,
        "intent": accuracy.get("intent", 0.0),
        "priority": accuracy.get("priority", 0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, required=True, help="cache folder for the built reference models")
    parser.add_argument("--spec", action="append", default=[], help="NAME:field=value,... (repeatable)")
    parser.add_argument("--job", type=Path, default=REPO / "finetune" / "support-triage.yaml")
    parser.add_argument("--prompt", type=Path, default=REPO / "prompts" / "support-triage.yaml")
    parser.add_argument(
        "--data", type=Path, default=None, help="folder with train/eval/test.jsonl (default: the job's)"
    )
    parser.add_argument("--steps", type=int, default=None, help="fine-tune steps (default: the job's max_steps)")
    parser.add_argument("--lr", type=float, default=None, help="fine-tune learning rate (default: the job's)")
    parser.add_argument("--batch-size", type=int, default=None, help="fine-tune batch size (default: the job's)")
    parser.add_argument(
        "--seeds", default=None, help="fine-tune seeds, comma-separated: one row each (default: the job's seed)"
    )
    parser.add_argument("--out", default="", help="suffix of the answers folder (several runs of one candidate)")
    parser.add_argument("--no-base", action="store_true", help="skip scoring the base model")
    args = parser.parse_args()

    from transformers import AutoTokenizer

    job = load_job(args.job)
    prompt = load_spec(args.prompt)
    data = args.data or (REPO / job.train).parent
    update: dict[str, Any] = {"eval_steps": None, "save_steps": 10**9}
    if args.steps:
        update |= {"max_steps": args.steps, "epochs": None}
    if args.lr:
        update["lr"] = args.lr
    if args.batch_size:
        update["batch_size"] = args.batch_size
    training = job.training.model_copy(update=update)
    print(f"fine-tune: {training.max_steps} steps, lr {training.lr}, batch {training.batch_size}; data {data}")
    header = "| candidate | params | pretrain s | fine-tune s | held-out exact / intent / priority | in-pool exact | base exact |"
    lines = [header, "|---|---|---|---|---|---|---|"]
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [training.seed]
    runs = [(text, seed) for text in args.spec or ["default:"] for seed in seeds]
    for text, seed in runs:
        name, spec = parse_spec(text)
        model = ensure_reference_model(args.models, spec=spec)
        pretrain_s = model.build_seconds  # of the build that made it, even when cached
        tokenizer = AutoTokenizer.from_pretrained(model.path)
        splits = {
            s: build_examples(read_rows(data / f"{s}.jsonl"), tokenizer, prompt, None)
            for s in ("train", "eval", "test")
        }
        if len(seeds) > 1:
            name = f"{name} seed {seed}"
        out = args.models / f"{name.replace(' ', '-')}{args.out}"
        out.mkdir(parents=True, exist_ok=True)
        tuned_settings = training.model_copy(update={"seed": seed})
        cfg = RecipeConfig(str(model.path), "reference", out / "checkpoints", lora=job.lora, training=tuned_settings)
        result = train(cfg, tokenizer, splits["train"])
        assert result.adapter_dir is not None
        tuned = load_for_generation(str(model.path), result.adapter_dir)
        scores = {s: exact_match(tuned, tokenizer, splits[s]) for s in ("test", "eval")}
        base = None if args.no_base else exact_match(load_for_generation(str(model.path)), tokenizer, splits["test"])
        for split, score in scores.items():
            with (out / f"answers-{split}.jsonl").open("w", encoding="utf-8") as fh:
                for ex, answer, target in zip(splits[split], score.answers, score.targets, strict=True):
                    fh.write(json.dumps({"line": ex.line, "answer": answer, "target": target}) + "\n")
        held = row_scores(scores["test"])
        lines.append(
            f"| {name} | {model.params / 1e6:.2f}M | {pretrain_s:.0f} | {result.seconds:.0f} | "
            f"{held['exact']:.3f} / {held['intent']:.3f} / {held['priority']:.3f} | {scores['eval'].exact_match:.3f} | "
            f"{'-' if base is None else f'{base.exact_match:.3f}'} |"
        )
        print(lines[-1], flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
