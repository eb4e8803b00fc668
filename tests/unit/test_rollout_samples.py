"""The rollout's arms read from hand-written request and feedback logs, incrementally; the replica probe."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmops.rollout.replicas import unreachable
from llmops.rollout.samples import ArmReader, ArmSelector, failed

CANARY = ArmSelector("canary", "support-lora/3", "support-triage/5")
STABLE = ArmSelector("stable", "support-lora/2", "support-triage/4")
T0 = 1_700_000_000.0


def rec(n: int, target: str = "canary", **over: Any) -> dict[str, Any]:
    arm = CANARY if target == "canary" else STABLE
    base = {
        "id": f"{n:032x}",
        "time": T0 + n,
        "route": "support-triage",
        "target": target,
        "prompt_version": arm.prompt_version,
        "adapter_version": arm.adapter_version,
        "status": 200,
        "latency_ms": 100.0 + n,
        "error": None,
    }
    return {**base, **over}


def write(path: Path, records: list[dict[str, Any]], *, tail: bytes = b"") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as f:
        for r in records:
            f.write(json.dumps(r).encode() + b"\n")
        f.write(tail)


def test_arms_from_two_replicas_exclude_shadow_stale_and_old_records_and_join_feedback(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    write(
        logs / "gateway-requests-a.jsonl",
        [
            rec(1, output='{"intent": "refund"}'),
            rec(2, status=502, error="engine answered 502"),  # a server-side failure
            rec(3, status=499, error="client disconnected"),  # the client's: not an error, no latency
            rec(4, status=429, error="rate limited"),
            rec(5, shadow_of="0" * 32, output="shadow answer"),  # a shadow copy: in no arm
            rec(6, adapter_version="support-lora/1"),  # the previous canary release: in no arm
            rec(7, prompt_version=None),  # no prompt rendered: still this release
            rec(-5),  # before the window
            rec(8, route="other-route"),
        ],
    )
    write(
        logs / "gateway-requests-b.jsonl",
        [rec(10, "stable", output="not json"), rec(11, "stable", status=200, error="stream broke")],
        tail=b'{"id": "' + b"f" * 32 + b'", "time": ',  # a replica killed mid-write: partial last line
    )
    write(logs / "feedback.jsonl", [{"id": f"{1:032x}", "score": 0.2}, {"id": f"{1:032x}", "score": 0.9}])
    write(logs / "feedback.jsonl", [{"id": f"{10:032x}", "score": 0.5}, {"id": "orphan", "score": 0.0}])

    reader = ArmReader(tmp_path, ["logs/gateway-requests*.jsonl"], [str(logs / "feedback*.jsonl")])
    canary, stable = reader.read("support-triage", T0, canary=CANARY, stable=STABLE)
    assert list(canary.errors) == [False, True, False, False, False]  # requests 1, 2, 3, 4, 7
    assert canary.requests == 5
    assert list(canary.latencies_ms) == [101.0, 107.0]
    assert list(canary.outputs) == ['{"intent": "refund"}']
    assert list(canary.scores) == [0.9]  # the last feedback of a request wins
    assert list(stable.errors) == [False, True]
    assert list(stable.latencies_ms) == [110.0]
    assert list(stable.outputs) == ["not json"] and list(stable.scores) == [0.5]


def test_a_second_read_sees_only_new_lines_and_survives_rotation_and_replacement(tmp_path: Path) -> None:
    live = tmp_path / "logs" / "gateway-requests.jsonl"
    write(live, [rec(1), rec(2)], tail=b'{"id": "' + b"e" * 32 + b'", "ti')
    reader = ArmReader(tmp_path, ["logs/gateway-requests*.jsonl"], ["logs/feedback*.jsonl"])
    look = {"canary": CANARY, "stable": STABLE}
    assert reader.read("support-triage", T0, **look)[0].requests == 2

    # the partial line is completed, then the file rotates (renamed) and a new live file starts
    with live.open("ab") as f:
        f.write(json.dumps(rec(3))[len('{"id": "' + "e" * 32 + '", "ti') :].encode() + b"\n")
        f.write(json.dumps(rec(4)).encode() + b"\n")
    live.rename(live.with_name("gateway-requests.20261130T102113Z-1.jsonl"))
    write(live, [rec(5)])
    canary, _ = reader.read("support-triage", T0, **look)
    assert canary.requests == 5  # 1, 2, then 3 (completed), 4 and 5: nothing read twice
    assert reader.skipped_lines == 0

    # another window of the same reader (a later step) starts from the records already read
    assert reader.read("support-triage", T0 + 4, **look)[0].requests == 2
    # new feedback is joined on the next look without re-reading the request logs
    write(tmp_path / "logs" / "feedback.jsonl", [{"id": f"{2:032x}", "score": 1.0}])
    assert list(reader.read("support-triage", T0, **look)[0].scores) == [1.0]

    # a file replaced by one with other content (a new inode or the same one) is read from its start
    replaced = live.with_name("gateway-requests.20261130T102113Z-1.jsonl")
    replaced.write_text(json.dumps(rec(20)) + "\n")
    assert reader.read("support-triage", T0, **look)[0].requests == 6


@pytest.fixture
def readyz_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.send_response(200 if self.path == "/healthz" else 503)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_unreachable_lists_replicas_that_do_not_answer_healthz(readyz_server: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"  # bound, never listening: connection refused
        not_ready = f"{readyz_server}/no-such-prefix"  # answers 503: a broken replica
        assert unreachable([readyz_server, closed, f"{readyz_server}/", not_ready], timeout_s=1.0) == [
            closed,
            not_ready,
        ]
    assert unreachable([]) == []


@pytest.mark.parametrize(
    ("status", "error", "counts"),
    [
        (200, None, False),
        (502, "engine local failed", True),
        (400, "prompt variable 'channel' is required", True),  # the same clients go to both arms: the release's
        (400, "engine local answered 400: max_tokens is too large for the model's context", True),
        (429, "too many requests for this key", False),  # the key's quota, not the release
        (499, "client disconnected", False),
        (None, "engine unreachable", True),
    ],
)
def test_a_request_counts_against_the_release_unless_the_client_alone_explains_it(
    status: int | None, error: str | None, counts: bool
) -> None:
    assert failed({"status": status, "error": error}) is counts


def test_a_log_shipped_again_as_a_new_file_counts_each_request_once(tmp_path: Path) -> None:
    shipped = tmp_path / "shared" / "replica-a"
    write(shipped / "gateway-requests.jsonl", [rec(1), rec(2)])
    reader = ArmReader(tmp_path, ["shared/*/gateway-requests*.jsonl"])
    canary, _ = reader.read("support-triage", T0, canary=CANARY, stable=STABLE)
    assert canary.requests == 2
    copy = shipped / "gateway-requests.jsonl.tmp"  # rsync: a new file with the old lines and a new one, renamed over
    copy.write_text((shipped / "gateway-requests.jsonl").read_text() + json.dumps(rec(3)) + "\n")
    copy.replace(shipped / "gateway-requests.jsonl")
    canary, _ = reader.read("support-triage", T0, canary=CANARY, stable=STABLE)
    assert canary.requests == 3
