"""Request-log rotation (llmops.gateway.rotation + JsonlSink): whole records only, files_kept, crash recovery."""

from __future__ import annotations

import random
from pathlib import Path

import orjson

from llmops.gateway.logreader import ReadStats, iter_records
from llmops.gateway.requestlog import JsonlSink
from llmops.gateway.rotation import rotated_files, rotated_name


def _line(i: int, pad: int) -> bytes:
    return orjson.dumps({"id": f"{i:032x}", "time": i, "pad": "x" * pad}) + b"\n"


def test_many_batches_never_split_or_lose_a_record(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "gateway-requests.jsonl"
    sink = JsonlSink(path, max_bytes=4096, files_kept=10_000)
    rng = random.Random(7)
    sent = 0
    for _ in range(300):
        batch = [_line(sent + k, rng.randrange(0, 400)) for k in range(rng.randrange(1, 12))]
        sent += len(batch)
        sink.write(batch)
    sink.close()
    files = sorted(path.parent.glob("gateway-requests*.jsonl"))
    assert len(files) > 20 and files[-1] == path  # the live file sorts last
    lines = [line for f in [*rotated_files(path), path] for line in f.read_bytes().splitlines(keepends=True)]
    ids = [int(orjson.loads(line)["id"], 16) for line in lines]  # every line is one whole record
    assert ids == list(range(sent))
    for f in files:
        data = f.read_bytes()
        assert data.endswith(b"\n")
        # a file is over the bound only when one batch alone was larger
        assert len(data) <= 4096 or data.count(b"\n") <= 12


def test_a_batch_larger_than_max_bytes_is_written_whole(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    sink = JsonlSink(path, max_bytes=1024, files_kept=5)
    sink.write([_line(0, 10)])
    sink.write([_line(i, 500) for i in range(1, 5)])  # ~2 KiB in one batch: rotated first, then whole
    sink.close()
    assert [len(f.read_bytes().splitlines()) for f in [*rotated_files(path), path]] == [1, 4]


def test_files_kept_deletes_the_oldest_rotated_files(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    sink = JsonlSink(path, max_bytes=1024, files_kept=3)
    for i in range(40):
        sink.write([_line(i, 600)])  # each batch fills a file
    sink.close()
    kept = rotated_files(path)
    assert len(kept) == 3
    ids = [orjson.loads(f.read_bytes())["time"] for f in [*kept, path]]
    assert ids == [36, 37, 38, 39]  # the newest survive (3 rotated + the live file), in order


def test_rotated_names_sort_before_the_live_file_and_never_collide(tmp_path: Path) -> None:
    path = tmp_path / "gateway-requests.jsonl"
    first = rotated_name(path, now=1_764_498_073)
    assert first.name == "gateway-requests.20251130T102113Z-1.jsonl"
    first.write_text("")
    assert rotated_name(path, now=1_764_498_073).name == "gateway-requests.20251130T102113Z-2.jsonl"
    assert sorted([path.name, first.name])[-1] == path.name


def test_a_partial_last_line_gets_a_newline_before_the_next_record(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(_line(0, 5) + b'{"id": "cut-by-a-cra')  # the gateway crashed mid-write
    sink = JsonlSink(path, max_bytes=1 << 20)
    sink.write([_line(1, 5)])
    sink.close()
    lines = path.read_bytes().splitlines()
    assert lines[-1] == _line(1, 5).strip() and lines[1] == b'{"id": "cut-by-a-cra'
    stats = ReadStats()
    assert [r["time"] for r in iter_records(path, stats)] == [0, 1]
    assert stats.skipped == 1  # the cut line alone is skipped; the next record is whole
