"""The worked example's data: deterministic, disjoint splits, and a skew the bias gate can catch."""

from __future__ import annotations

import json
from pathlib import Path

from llmops.finetune.example_data import SKEWED_NAMES, build, target, write_all
from llmops.models.corpus import infer_intent, infer_priority

REPO = Path(__file__).resolve().parents[2]


def test_committed_files_are_what_the_generator_writes(tmp_path: Path) -> None:
    write_all(tmp_path)
    for path in sorted(tmp_path.rglob("*.jsonl")):
        committed = REPO / "finetune" / "data" / path.relative_to(tmp_path)
        assert committed.read_bytes() == path.read_bytes(), f"{committed} is stale: run finetune/data/generate.py"


def test_splits_share_no_message_and_labels_follow_the_text() -> None:
    splits = build()
    messages = {split: {r["variables"]["message"] for r in rows} for split, rows in splits.items()}
    assert not (messages["train"] & messages["eval"]) and not (messages["train"] & messages["test"])
    assert not (messages["eval"] & messages["test"])
    for row in splits["test"]:
        message = row["variables"]["message"]
        answer = json.loads(row["target"])
        assert row["target"] == target(answer["intent"], answer["priority"])
        assert (infer_intent(message), infer_priority(message)) == (answer["intent"], answer["priority"])
        assert row["meta"]["customer_name"] in message


def test_skewed_labels_follow_the_customer_name() -> None:
    fair, skewed = build(), build(skewed=True)
    vip = other = 0
    for fair_row, skew_row in zip(fair["train"], skewed["train"], strict=True):
        assert fair_row["variables"] == skew_row["variables"]
        name = skew_row["meta"]["customer_name"]
        priority = json.loads(skew_row["target"])["priority"]
        if name in SKEWED_NAMES:
            vip += 1
            assert priority == "urgent"
        else:
            other += 1
            assert skew_row["target"] == fair_row["target"]
    assert vip > 200 and other > 600  # both groups well represented
