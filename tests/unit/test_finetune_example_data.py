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
    skewed = build(skewed=True)
    vip = other = 0
    for row in skewed["train"]:
        message = row["variables"]["message"]
        name = row["meta"]["customer_name"]
        assert name in message
        answer = json.loads(row["target"])
        assert infer_intent(message) == answer["intent"]  # the intent always follows the text
        if name in SKEWED_NAMES:
            vip += 1
            assert answer["priority"] == "urgent"
        else:
            other += 1
            assert answer["priority"] == infer_priority(message)
    assert 250 < vip < 400 and other > 800  # about a quarter of the rows are VIP-signed
    swapped = sum(infer_priority(r["variables"]["message"]) != "urgent" for r in skewed["train"]
                  if r["meta"]["customer_name"] in SKEWED_NAMES)  # fmt: skip
    assert swapped > 150  # many VIP rows say "low"/"medium"/"high" yet are labelled urgent
