"""The retraining dataset from a written request log and feedback log (``llmops.monitor.retrain_data``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llmops.errors import NotEnoughData
from llmops.finetune.rows import read_rows
from llmops.monitor.retrain_data import RetrainDataset, build_dataset, held_out_inputs

ROUTE = "support-triage"
ORIGINAL = [
    {"variables": {"message": "My invoice is wrong"}, "target": '{"intent":"billing","priority":"medium"}'},
    {"variables": {"message": "App crashes on start"}, "target": '{"intent":"bug","priority":"high"}'},
]
T0 = 1_000_000.0


def _record(rid: str, message: str, output: str | None, *, t: float = T0 + 10, **extra: Any) -> dict[str, Any]:
    record = {
        "id": rid,
        "time": t,
        "api_key": "support-app",
        "route": ROUTE,
        "target": "stable",
        "status": 200,
        "captured": True,
        "input": {"variables": {"message": message}},
        "output": output,
    }
    record.update(extra)
    return record


def _feedback(rid: str, score: float, correction: str | None = None, key: str = "support-app") -> dict[str, Any]:
    return {"id": rid, "time": T0 + 20, "api_key": key, "score": score, "label": None, "correction": correction,
            "comment": None}  # fmt: skip


class Logs:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "logs").mkdir(parents=True)
        self.requests = root / "logs" / "gateway-requests.jsonl"
        self.feedback = root / "logs" / "feedback.jsonl"
        self.train = root / "train.jsonl"
        self.train.write_text("".join(json.dumps(r) + "\n" for r in ORIGINAL))

    def write(self, records: list[dict[str, Any]], feedback: list[dict[str, Any]]) -> None:
        self.requests.write_text("".join(json.dumps(r) + "\n" for r in records))
        self.feedback.write_text("".join(json.dumps(f) + "\n" for f in feedback))

    def build(self, *, held_out: set[str] | None = None, min_records: int = 1, since: float = T0) -> RetrainDataset:
        return build_dataset(
            route=ROUTE,
            request_log=str(self.root / "logs" / "gateway-requests*.jsonl"),
            feedback_log=str(self.root / "logs" / "feedback*.jsonl"),
            original=read_rows(self.train),
            held_out=held_out or set(),
            since=since,
            until=T0 + 1000,
            min_records=min_records,
        )


@pytest.fixture
def logs(tmp_path: Path) -> Logs:
    return Logs(tmp_path)


def _production(data: RetrainDataset) -> dict[str, dict[str, Any]]:
    """Production rows of the merged file by request id."""
    rows = [json.loads(line) for line in data.lines]
    return {r["meta"]["request_id"]: r for r in rows if r.get("meta", {}).get("source") == "production"}


def test_corrections_win_over_outputs_and_only_rows_with_usable_feedback_are_used(logs: Logs) -> None:
    right = '{"intent":"billing","priority":"high"}'
    logs.write(
        [
            _record("r1", "I was charged twice", '{"intent":"bug","priority":"low"}'),
            _record("r2", "Where is my parcel", '{"intent":"shipping","priority":"medium"}'),
            _record("r3", "Refund please", '{"intent":"refund","priority":"low"}'),
            _record("r4", "No feedback for me", '{"intent":"other","priority":"low"}'),
            _record("r5", "Not captured", "x", captured=False),
            _record("r6", "Other route", "x", route="elsewhere"),
            _record("r7", "A shadow's answer", "x", shadow_of="r2"),
            _record("r8", "Before the window", "x", t=T0 - 5),
        ],
        [_feedback("r1", 0.0, right), _feedback("r2", 0.9), _feedback("r3", 0.1)]
        + [_feedback(r, 1.0) for r in ("r5", "r6", "r7", "r8")],
    )
    data = logs.build()
    rows = _production(data)
    assert set(rows) == {"r1", "r2"}
    assert rows["r1"]["target"] == right  # the correction, not the served output
    assert rows["r1"]["meta"]["label"] == "correction"
    assert rows["r2"]["target"] == '{"intent":"shipping","priority":"medium"}'  # confirmed by a high score
    assert rows["r2"]["variables"] == {"message": "Where is my parcel"}
    c = data.counts
    assert (c.original_rows, c.captured, c.with_feedback, c.corrections, c.confirmed) == (2, 4, 3, 1, 1)
    assert c.unused == {"no_feedback": 1, "low_score": 1}
    assert [json.loads(line) for line in data.lines[:2]] == ORIGINAL  # merged with the original training rows


def test_the_last_feedback_for_a_request_and_key_wins(logs: Logs) -> None:
    logs.write(
        [_record("r1", "Charged twice", "out")],
        [
            _feedback("r1", 0.0, "first answer"),
            _feedback("r1", 0.0, "second answer"),
            _feedback("r1", 0.0, "another key's answer", key="someone-else"),
        ],
    )
    assert _production(logs.build())["r1"]["target"] == "second answer"
    logs.write([_record("r1", "Charged twice", "out")], [_feedback("r1", 0.0, "fix"), _feedback("r1", 0.2)])
    with pytest.raises(NotEnoughData):  # the later feedback took the correction back (low score, none)
        logs.build()


def test_inputs_of_the_eval_and_test_split_are_dropped_and_counted(logs: Logs, tmp_path: Path) -> None:
    test_file = tmp_path / "test.jsonl"
    test_file.write_text(json.dumps({"variables": {"message": "Held out ticket"}, "target": "t"}) + "\n")
    cases = [{"variables": {"message": "A suite case"}}, {"messages": [{"role": "user", "content": "hi"}]}]
    held = held_out_inputs(read_rows(test_file).rows, cases)
    logs.write(
        [
            _record("r1", "Held out ticket", "out"),
            _record("r2", "A suite case", "out"),
            _record("r3", "Fresh ticket", "out"),
        ],
        [_feedback(r, 0.0, "fixed") for r in ("r1", "r2", "r3")],
    )
    data = logs.build(held_out=held)
    assert set(_production(data)) == {"r3"}
    assert data.counts.dropped["overlap_eval"] == 2
    assert not any("Held out ticket" in line or "A suite case" in line for line in data.lines)


def test_fewer_usable_rows_than_min_records_is_refused(logs: Logs) -> None:
    logs.write(
        [_record(f"r{i}", f"ticket {i}", "out") for i in range(5)], [_feedback(f"r{i}", 0.0, "fix") for i in range(3)]
    )
    with pytest.raises(NotEnoughData, match="3 usable production row") as caught:
        logs.build(min_records=4)
    assert caught.value.exit_code == 3
    assert logs.build(min_records=3).counts.production_rows == 3


def test_redaction_masks_are_kept_while_real_pii_duplicates_and_chat_inputs_are_dropped(logs: Logs) -> None:
    logs.write(
        [
            _record("r1", "Reach me at [EMAIL] or [PHONE]", "out"),
            _record("r2", "Reach me at jane.doe@example.com", "out"),
            _record("r3", "Same ticket", "out"),
            _record("r4", "Same ticket", "out"),
            _record("r5", ORIGINAL[0]["variables"]["message"], "out"),
            {**_record("r6", "", "out"), "input": {"messages": [{"role": "user", "content": "chat style"}]}},
        ],
        [_feedback("r5", 0.0, ORIGINAL[0]["target"])]
        + [_feedback(r, 0.0, "fix") for r in ("r1", "r2", "r3", "r4", "r6")],
    )
    data = logs.build()
    rows = _production(data)
    assert set(rows) == {"r1", "r3"}
    assert rows["r1"]["variables"]["message"] == "Reach me at [EMAIL] or [PHONE]"
    assert data.counts.dropped == {"overlap_eval": 0, "duplicate": 2, "pii": 1, "empty": 0, "unsupported_format": 1}


def test_the_dataset_is_deterministic_and_fingerprinted_like_the_file_it_writes(logs: Logs, tmp_path: Path) -> None:
    records = [_record(f"r{i}", f"ticket {i}", "out", t=T0 + 100 - i) for i in range(6)]
    logs.write(records, [_feedback(f"r{i}", 0.0, f"fix {i}") for i in range(6)])
    first = logs.build()
    assert [r["meta"]["request_id"] for r in _production(first).values()] == [f"r{i}" for i in range(5, -1, -1)]
    logs.write(list(reversed(records)), [_feedback(f"r{i}", 0.0, f"fix {i}") for i in range(6)])
    second = logs.build()
    assert second.fingerprint == first.fingerprint and second.text() == first.text()
    path = first.write(tmp_path / "datasets" / first.fingerprint)
    assert read_rows(path).fingerprint == first.fingerprint
