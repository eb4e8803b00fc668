"""The pure parts of ``llmops trace``: time-ordered request ids, the log search, the demo's answer picking,
the digest."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmops.demo_trace import pick_answers
from llmops.governance.requests import feedback_of, find_request, shadows_of
from llmops.governance.trace import digest_of
from llmops.requestid import REQUEST_ID, new_request_id, request_id_time


def test_request_ids_are_32_hex_carry_their_time_and_sort_by_it() -> None:
    earlier, later = new_request_id(now=1_800_000_000.123), new_request_id(now=1_800_000_001.5)
    assert REQUEST_ID.fullmatch(earlier) and REQUEST_ID.fullmatch(later)
    assert earlier < later
    assert request_id_time(earlier, now=1_800_000_100) == 1_800_000_000.123
    assert new_request_id() != new_request_id()
    # ids of the old, fully random scheme (or garbage) decode to no time rather than a wrong one
    assert request_id_time("ffffffffffff" + "0" * 20) is None
    assert request_id_time("0000000000ff" + "0" * 20) is None
    assert request_id_time("not-an-id") is None


def test_the_search_finds_a_record_in_any_file_and_formatting_and_names_what_it_read(
    tmp_path: Path, request_record: Callable[..., dict[str, Any]], write_log: Callable[..., Path]
) -> None:
    now = time.time()
    ids = [new_request_id(now=now + i) for i in range(4)]
    write_log(tmp_path / "a" / "gateway-requests.jsonl", [request_record(ids[0], now), request_record(ids[1], now)])
    # a replica's log shipped by a tool that re-formats JSON, and a partial last line
    other = tmp_path / "b" / "gateway-requests.20261130T000000-1.jsonl"
    other.parent.mkdir()
    other.write_text(json.dumps(request_record(ids[2], now), indent=None, separators=(", ", ": ")) + "\n"
                     + json.dumps(request_record(ids[3], now, shadow_of=ids[2]))[:-9])  # fmt: skip
    globs = [str(tmp_path / "a" / "*requests*.jsonl"), str(tmp_path / "b" / "*requests*.jsonl")]
    found, searched = find_request(globs, ids[2])
    assert found is not None and found.record["id"] == ids[2] and found.file == other and found.line == 1
    assert len(searched.files) == 2 and searched.lines == 4
    assert find_request(globs, new_request_id())[0] is None
    assert shadows_of(globs, ids[2]) == []  # the shadow's line is partial: not a record
    write_log(tmp_path / "a" / "feedback.jsonl", [
        {"id": ids[0], "api_key": "app", "score": 0.0}, {"id": ids[0], "api_key": "app", "score": 1.0},
        {"id": ids[0], "api_key": "ops", "score": 0.5},
    ])  # fmt: skip
    assert sorted(f["score"] for f in feedback_of([str(tmp_path / "a" / "feedback.jsonl")], ids[0])) == [0.5, 1.0]


def test_the_digest_covers_the_chain_but_not_where_the_record_was_read() -> None:
    document = {"request_id": "x", "lineage": {"key": "k"}, "log": {"file": "a.jsonl", "line": 3}, "digest": ""}
    digest = digest_of(document)
    assert digest == digest_of({**document, "log": {"file": "rotated.jsonl", "line": 9}, "digest": digest})
    assert digest != digest_of({**document, "lineage": {"key": "other"}})


def test_the_demo_traces_the_newest_successful_answer_of_its_release_per_target(
    request_record: Callable[..., dict[str, Any]],
) -> None:
    release = ("triage-lora/1", "triage/1")
    records = [
        request_record("a", 1.0, target="canary", adapter_version="triage-lora/1", prompt_version="triage/1"),
        request_record("b", 2.0, target="canary", adapter_version="triage-lora/1", prompt_version="triage/1"),
        request_record("c", 3.0, target="canary", adapter_version="triage-lora/1", prompt_version="triage-hotfix/1"),
        request_record("d", 4.0, target="canary", adapter_version="triage-lora/1", prompt_version="triage/1", status=422),
        request_record("e", 5.0, target="stable", adapter_version="triage-lora/1", prompt_version="triage/1"),
        request_record("f", 6.0, target="stable", adapter_version="triage-lora/1", prompt_version="triage/1",
                       shadow_of="e"),
    ]  # fmt: skip
    assert pick_answers(records, release, ("canary", "stable")) == {"canary": "b", "stable": "e"}
