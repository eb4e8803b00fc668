"""Fine-tune speed on CPU against torch threads and OpenMP's wait policy (what llmops.finetune.threads decides).

Each configuration trains the worked example's LoRA (``finetune/support-triage.yaml``'s settings, its train
rows formatted with ``prompts/support-triage.yaml``) on the reference model for ``--steps`` steps in a fresh
child process (``OMP_WAIT_POLICY`` is read once, when torch loads OpenMP), one after another, and prints the
seconds and the ratio to the baseline measured in the same run: two threads under passive waiting (what the
CLI ran with before ``cpu_threads``). Depends on the machine's cores and on other work running beside it.

Usage: python bench/finetune_threads.py [--steps 300]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = (("PASSIVE", 2), ("PASSIVE", 1), ("ACTIVE", 2), ("ACTIVE", 1))


def child(steps: int, threads: int) -> None:
    from transformers import AutoTokenizer

    from llmops.finetune.dataset import build_examples
    from llmops.finetune.job import load_job
    from llmops.finetune.recipe import RecipeConfig, train
    from llmops.finetune.rows import read_rows
    from llmops.models.reference import ensure_reference_model
    from llmops.prompts.spec import load_spec

    model = ensure_reference_model(REPO / ".llmops" / "models")
    job = load_job(REPO / "finetune" / "support-triage.yaml")
    tokenizer = AutoTokenizer.from_pretrained(model.path)
    rows = read_rows(REPO / job.train)
    examples = build_examples(rows, tokenizer, load_spec(REPO / "prompts" / "support-triage.yaml"), None)
    update = {"max_steps": steps, "epochs": None, "eval_steps": None, "save_steps": 10**9, "cpu_threads": threads}
    training = job.training.model_copy(update=update)
    with tempfile.TemporaryDirectory() as out:
        cfg = RecipeConfig(str(model.path), "reference", Path(out), lora=job.lora, training=training)
        started = time.perf_counter()
        train(cfg, tokenizer, examples)
        print(f"{time.perf_counter() - started:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.steps, args.child)
        return
    print(f"{os.cpu_count()} cores; {args.steps} steps per configuration")
    baseline = None
    for policy, threads in CONFIGS:
        env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"} | {"OMP_WAIT_POLICY": policy}
        cmd = [sys.executable, __file__, "--steps", str(args.steps), "--child", str(threads)]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        seconds = float(done.stdout.strip().splitlines()[-1])
        baseline = baseline or seconds
        print(
            f"OMP_WAIT_POLICY={policy:<7} threads {threads}: {seconds:6.1f} s  ({baseline / seconds:.2f}x the baseline)"
        )


if __name__ == "__main__":
    main()
