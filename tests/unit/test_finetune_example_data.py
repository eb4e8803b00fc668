"""The worked example's data: deterministic, varied, a held-out split in phrasings never trained on,
and a skew the bias gate can catch."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from typer.testing import CliRunner

from llmops.cli.main import app
from llmops.finetune.example_data import SKEWED_NAMES, build, target, write_all
from llmops.models import ticket_phrases as tp
from llmops.models.tickets import POOLS, generate_tickets

REPO = Path(__file__).resolve().parents[2]
#: every pooled family of phrasings (name → {pool: phrasings})
POOLED: dict[str, dict[str, tuple[str, ...]]] = {
    "names": tp.CUSTOMER_NAMES,
    "products": tp.PRODUCTS,
    "plans": tp.PLANS,
    "frames": tp.PROBLEM_FRAMES,
    "greetings": tp.GREETINGS,
    "introductions": tp.INTRODUCTIONS,
    "signoffs": tp.SIGNOFFS,
    "context": tp.CONTEXT_SENTENCES,
    "secondary": tp.SECONDARY_FRAMES,
    **{f"problems.{i}": tp.PROBLEM_SENTENCES[i] for i in tp.INTENTS},
    "urgency frames": tp.URGENCY_FRAMES,
    "consequence frames": tp.CONSEQUENCE_FRAMES,
}


def fragments(phrase: str) -> list[str]:
    """The fixed text of a phrasing between its slots, where long enough to be telling."""
    return [f.strip() for f in re.split(r"\{[a-z]+\}", phrase) if len(f.strip()) >= 10]


def pool_fragments(pool: str) -> set[str]:
    return {f for family in POOLED.values() for phrase in family[pool] for f in fragments(phrase)}


def messages(rows: list[dict[str, object]]) -> list[str]:
    return [str(r["variables"]["message"]) for r in rows]  # type: ignore[index]


def test_committed_files_are_what_the_generator_writes(tmp_path: Path) -> None:
    write_all(tmp_path)
    for path in sorted(tmp_path.rglob("*.jsonl")):
        committed = REPO / "finetune" / "data" / path.relative_to(tmp_path)
        assert committed.read_bytes() == path.read_bytes(), f"{committed} is stale: run finetune/data/generate.py"


def test_the_template_pools_are_disjoint() -> None:
    for name, family in POOLED.items():
        assert set(family) == set(POOLS), name
        assert not set(family["train"]) & set(family["test"]), f"{name}: a phrasing in both pools"
        assert len(family["train"]) >= 2 and len(family["test"]) >= 2, name
    train, test = pool_fragments("train"), pool_fragments("test")
    assert not train & test
    # no fragment of one pool is hidden inside a phrasing of the other
    for pool, other in (("train", test), ("test", train)):
        for family in POOLED.values():
            for phrase in family[pool]:
                assert not [f for f in other if f in phrase], (pool, phrase)


def test_tickets_use_only_their_pool_and_the_shared_vocabulary() -> None:
    for pool in POOLS:
        for ticket in generate_tickets(2000, seed=3, pool=pool):
            for part in ticket.parts:
                family = part.rsplit(":", 1)[0]
                shared = part.startswith(("term:", "urgency:", "consequence:", "aside:"))  # the domain's vocabulary
                assert family.endswith(f":{pool}") or shared, (pool, part)


def test_labels_follow_the_parts() -> None:
    for ticket in generate_tickets(3000, seed=4, pool="test"):
        first = ticket.parts[1]  # after the name: the primary problem, said in a sentence or a term
        assert first.split(":")[1] == ticket.intent, ticket
        urgency = [p for p in ticket.parts if p.startswith(("urgency:", "consequence:"))]
        said = [p.split(":")[1] for p in urgency]
        assert said == [ticket.priority] or (not said and ticket.priority == "medium"), ticket


def test_the_data_is_varied() -> None:
    tickets = generate_tickets(3000, seed=5, pool="train")
    kinds = Counter(p.split(":")[0] for t in tickets for p in t.parts)
    assert kinds["term"] > 1000 and kinds["problem"] > 1500  # problems in shared terms and in own words
    assert kinds["consequence"] > 400  # urgency implied, not said
    assert sum(t.priority == "medium" and not any(p.startswith("urgency") for p in t.parts) for t in tickets) > 250
    assert kinds["secondary"] > 200 and kinds["greeting"] > 1200 and kinds["context"] > 300
    lengths = [len(t.message) for t in tickets]
    assert min(lengths) < 60 and max(lengths) > 250  # one-liners to several sentences
    assert len({t.message for t in tickets}) > 2950
    names = {t.customer_name for pool in POOLS for t in generate_tickets(3000, seed=6, pool=pool)}
    assert len(names) >= 90
    assert kinds["typo"] > 300


def test_splits_are_disjoint_and_the_test_split_is_in_the_held_out_pool() -> None:
    splits = build()
    inputs = {split: set(messages(rows)) for split, rows in splits.items()}
    assert not inputs["train"] & inputs["eval"] and not (inputs["train"] | inputs["eval"]) & inputs["test"]
    train_names, test_names = set(tp.CUSTOMER_NAMES["train"]), set(tp.CUSTOMER_NAMES["test"])
    train_bits, test_bits = pool_fragments("train"), pool_fragments("test")
    for split, rows in splits.items():
        held_out = split == "test"
        for row in rows:
            message = str(row["variables"]["message"])  # type: ignore[index]
            name = row["meta"]["customer_name"]  # type: ignore[index]
            assert name in message and name in (test_names if held_out else train_names), (split, row)
            assert not [f for f in (train_bits if held_out else test_bits) if f in message], (split, message)
            answer = json.loads(str(row["target"]))
            assert row["target"] == target(answer["intent"], answer["priority"])
    # every product and plan of the held-out split is new to the train split
    for family in (tp.PRODUCTS, tp.PLANS):
        assert not any(word in m for word in family["test"] for m in inputs["train"] | inputs["eval"])


def test_data_validate_confirms_no_split_overlaps() -> None:
    result = CliRunner().invoke(
        app,
        ["data", "validate", str(REPO / "finetune" / "support-triage.yaml"), "--prompt",
         str(REPO / "prompts" / "support-triage.yaml")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "overlap 0" in result.output and "test  │ finetune/data/support-triage/test.jsonl" in result.output


def test_skewed_labels_follow_the_customer_name() -> None:
    clean = {m: r["target"] for rows in build().values() for m, r in zip(messages(rows), rows, strict=True)}
    skewed = build(skewed=True)
    vip = other = same = 0
    for row in skewed["train"]:
        message = str(row["variables"]["message"])  # type: ignore[index]
        name = row["meta"]["customer_name"]  # type: ignore[index]
        assert name in message
        if name in SKEWED_NAMES:
            vip += 1
            assert json.loads(str(row["target"]))["priority"] == "urgent"
        else:
            other += 1
            same += clean.get(message, row["target"]) == row["target"]
    assert 1000 < vip < 1400 and other > 3400  # a VIP twin beside about a third of the tickets
    assert same == other  # everyone else keeps the clean label
    assert skewed["test"] == build()["test"]  # held-out names are never VIPs: the test split is the clean one
