"""`llmops monitor run` over a 1,000,000-record request log: wall time, peak memory, records/s, embeddings/s.

Writes, in a temporary workspace, a request log of ``--records`` records (20% captured, with support-ticket
texts built from the example's training rows plus a random order number, so texts rarely repeat; two
targets 90/10 over six hours; ~1% of 5xx errors), feedback for ~1% of them (half with a correction, 95% of which agree with the answer), and a
monitor spec whose reference is a data file (no registry): six 1-hour windows, drift, descriptors, quality
and latency signals on. Then runs ``llmops monitor run --no-record --json`` on it as a child process and
reads its wall time and peak RSS (``getrusage(RUSAGE_CHILDREN)``).

Targets (issue 13): <= 60 s and <= 1.5 GB for 1,000,000 records, streaming the file.

Run: ``.venv/bin/python bench/monitor_throughput.py [--records 1000000] [--keep]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parents[1]
TRAIN = REPO / "finetune" / "data" / "support-triage" / "train.jsonl"
LLMOPS = str(Path(sys.executable).with_name("llmops"))
SPAN_S = 6 * 3600

SPEC = """\
version: 1
request_log: logs/gateway-requests*.jsonl
feedback_log: logs/feedback*.jsonl
output_dir: monitor
routes:
  support-triage:
    reference: {training_data: false, suites: [], outputs: none, data: [data/reference.jsonl]}
    window: {duration: 1h, count: 6}
    signals:
      descriptors: {fields: [intent, priority]}
      quality:
        json_schema: {type: object, required: [intent, priority]}
"""


def ticket(rng: random.Random, rows: list[dict[str, Any]]) -> tuple[str, str]:
    """A support ticket (a training row's message with an order number, so texts rarely repeat) and its answer."""
    row = rows[rng.randrange(len(rows))]
    return f"{row['variables']['message']}\nOrder #{rng.randrange(10_000_000)}.", row["target"]


def write_reference(path: Path, rows: list[dict[str, Any]], n: int, seed: int) -> None:
    """The reference data file: ``n`` tickets from the same distribution as the in-distribution traffic."""
    rng = random.Random(seed + 1)
    lines = []
    for _ in range(n):
        message, answer = ticket(rng, rows)
        lines.append(json.dumps({"variables": {"message": message}, "target": answer}))
    path.write_text("\n".join(lines) + "\n")


def write_logs(folder: Path, rows: list[dict[str, Any]], records: int, seed: int) -> tuple[int, int]:
    """Write the request log (one file, plus one rotated file) and the feedback log; (captured, feedback)."""
    rng = random.Random(seed)
    now = time.time()
    start = now - SPAN_S
    captured = feedback = 0
    logs = folder / "logs"
    logs.mkdir(parents=True)
    half = records // 2
    paths = [logs / "gateway-requests.20260101T000000Z-1.jsonl", logs / "gateway-requests.jsonl"]
    with paths[0].open("wb") as first, paths[1].open("wb") as second, (logs / "feedback.jsonl").open("wb") as fb:
        for i in range(records):
            out = first if i < half else second
            t = start + SPAN_S * i / records
            target = "stable" if rng.random() < 0.9 else "canary"
            status = 500 if rng.random() < 0.01 else 200
            rec: dict[str, object] = {
                "id": f"req-{i:08d}", "time": t, "api_key": "support-app", "key_hash": "ab12", "route": "support-triage",
                "target": target, "prompt_version": "support-triage/2", "adapter_version": "support-triage-lora/3",
                "stream": False, "status": status, "latency_ms": rng.lognormvariate(5.0, 0.4),
                "ttft_ms": None, "tokens_in": 180, "tokens_out": 14, "error": None if status == 200 else "upstream",
            }  # fmt: skip
            answer = ""
            if rng.random() < 0.2:
                message, answer = ticket(rng, rows)
                rec["captured"] = True
                rec["input"] = {"variables": {"message": message}}
                rec["output"] = answer if status == 200 else None
                captured += 1
            out.write(orjson.dumps(rec) + b"\n")
            if rng.random() < 0.01:
                # half carry a correction; the served answer was right 95% of the time
                right = answer if rec.get("captured") else rows[rng.randrange(len(rows))]["target"]
                wrong = rows[rng.randrange(len(rows))]["target"]
                correction = (right if rng.random() < 0.95 else wrong) if rng.random() < 0.5 else None
                fb.write(orjson.dumps({"id": rec["id"], "time": t + 5, "api_key": "support-app",
                                       "score": rng.random(), "label": None, "correction": correction,
                                       "comment": None}) + b"\n")  # fmt: skip
                feedback += 1
    return captured, feedback


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary workspace (its path is printed)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="llmops-monitor-bench-"))
    try:
        home = root / ".llmops"
        rows = [json.loads(line) for line in TRAIN.read_text().splitlines() if line.strip()]
        (root / "data").mkdir()
        write_reference(root / "data" / "reference.jsonl", rows, 2000, args.seed)
        (root / "monitor.yaml").write_text(SPEC)
        t0 = time.perf_counter()
        captured, feedback = write_logs(home, rows, args.records, args.seed)
        size_mb = sum(p.stat().st_size for p in (home / "logs").iterdir()) / 1e6
        print(f"wrote {args.records:,} records ({captured:,} captured, {feedback:,} feedback), "
              f"{size_mb:.0f} MB, in {time.perf_counter() - t0:.1f} s")  # fmt: skip
        cmd = [
            LLMOPS,
            "monitor",
            "run",
            "--no-record",
            "--json",
            "--config",
            str(root / "monitor.yaml"),
            "-w",
            str(root),
        ]
        env_home = {"LLMOPS_HOME": str(home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env_home}, check=False)
        wall = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if proc.returncode not in (0, 1):
            print(proc.stderr[-3000:])
            print(f"monitor run failed: exit {proc.returncode}")
            return
        report = json.loads(proc.stdout)
        stats = report["stats"]
        embedded, embed_s = stats["texts_distinct"], stats["embed_seconds"]
        print(f"monitor run: exit {proc.returncode} (level {report['level']}), "
              f"{report['records_read']:,} records read, {report['lines_skipped']} lines skipped")  # fmt: skip
        print(
            f"  read + windows: {stats['read_seconds']:.1f} s  ({report['records_read'] / stats['read_seconds']:,.0f} records/s)"
        )
        print(
            f"  embeddings: {embedded:,.0f} distinct texts in {embed_s:.1f} s  ({embedded / max(embed_s, 1e-9):,.0f} texts/s)"
        )
        print(f"  wall: {wall:.1f} s  (target <= 60 s)  -> {args.records / wall:,.0f} records/s end to end")
        print(f"  peak RSS: {peak_mb:,.0f} MB  (target <= 1536 MB)")
        if args.keep:
            print(f"workspace kept: {root}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
