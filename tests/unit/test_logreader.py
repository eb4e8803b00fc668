"""The request-log reader skips (and counts) what a killed gateway leaves behind, and nothing else."""

from __future__ import annotations

from pathlib import Path

import orjson

from llmops.gateway.logreader import ReadStats, iter_records


def _line(i: int) -> bytes:
    record = {"id": f"r{i}", "time": 1.5 + i, "route": "echo", "status": 200, "error": None, "output": '{"id": 1}'}
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


def test_a_partial_last_line_is_skipped_and_counted(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    log.write_bytes(_line(0) + _line(1) + _line(2)[:25])  # killed mid-write: the last line is cut
    stats = ReadStats()
    assert [r["id"] for r in iter_records(log, stats)] == ["r0", "r1"]
    assert (stats.records, stats.skipped, stats.files) == (2, 1, [log])


def test_a_record_appended_after_a_fragment_is_recovered(tmp_path: Path) -> None:
    """Restarted after a kill -9, the gateway appends right after the fragment of the killed write."""
    log = tmp_path / "requests.jsonl"
    log.write_bytes(_line(0) + _line(1)[:40] + _line(2) + _line(3))
    stats = ReadStats()
    assert [r["id"] for r in iter_records(log, stats)] == ["r0", "r2", "r3"]
    assert stats.skipped == 1


def test_whole_files_read_whole_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "gw-b.jsonl").write_bytes(_line(2) + _line(3))
    (tmp_path / "gw-a.jsonl").write_bytes(_line(0) + b"\n" + _line(1))  # blank lines are no damage
    (tmp_path / "other.txt").write_bytes(b"not a log\n")
    stats = ReadStats()
    records = list(iter_records(str(tmp_path / "gw-*.jsonl"), stats))
    assert [r["id"] for r in records] == ["r0", "r1", "r2", "r3"]
    assert records[0]["output"] == '{"id": 1}'
    assert stats.skipped == 0 and [p.name for p in stats.files] == ["gw-a.jsonl", "gw-b.jsonl"]


def test_garbage_and_non_objects_are_skipped_and_a_missing_file_is_empty(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    log.write_bytes(b"garbage\n[1, 2]\n" + _line(0))
    stats = ReadStats()
    assert [r["id"] for r in iter_records(log, stats)] == ["r0"]
    assert stats.skipped == 2
    assert list(iter_records(tmp_path / "absent.jsonl")) == []
