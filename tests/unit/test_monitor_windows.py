"""Windows over the request log: time and request-count windows, shadows, feedback joins, partial lines, bounds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from llmops.config.monitor import MonitorFile
from llmops.monitor.windows import Reservoir, collect

UNTIL = 1_800_000_000.0


def spec(window: dict[str, object]) -> MonitorFile:
    return MonitorFile.model_validate(
        {"routes": {"support-triage": {"window": window}, "other": {}}, "request_log": "req*.jsonl"}
    )


def run(tmp_path: Path, window: dict[str, object], **kw: object):  # type: ignore[no-untyped-def]
    return collect(
        spec(window), str(tmp_path / "req*.jsonl"), str(tmp_path / "fb*.jsonl"),
        routes=["support-triage"], until=UNTIL, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def test_duration_windows_end_at_until_and_skip_shadows_other_routes_and_the_future(
    tmp_path: Path, request_record: Callable[..., dict[str, object]], write_log: Callable[..., Path]
) -> None:
    records = [request_record(f"a{i}", UNTIL - 3600 * 3 + 60 * i) for i in range(180)]  # 3 h, one a minute
    records += [request_record("shadow", UNTIL - 10, shadow_of="a1"), request_record("x", UNTIL - 10, route="x")]
    records += [request_record("late", UNTIL + 5), request_record("old", UNTIL - 3600 * 3 - 1)]
    write_log(tmp_path / "req.jsonl", records)
    found = run(tmp_path, {"duration": "1h", "count": 2})
    windows = found.windows["support-triage"]
    assert [(w.start, w.end) for w in windows] == [(UNTIL - 7200, UNTIL - 3600), (UNTIL - 3600, UNTIL)]
    assert [w.requests for w in windows] == [60, 60]
    assert found.records_read == len(records)
    # --window overrides the spec's kind and length (the spec's count stays)
    assert [
        w.requests for w in run(tmp_path, {"requests": 10, "count": 2}, window_s=5400.0).windows["support-triage"]
    ] == [90, 90]


def test_request_windows_are_the_last_chunks_counted_back_from_the_newest(
    tmp_path: Path, request_record: Callable[..., dict[str, object]], write_log: Callable[..., Path]
) -> None:
    records = [request_record(f"r{i}", UNTIL - 2000 + i, target="stable" if i % 10 else "canary") for i in range(1050)]
    write_log(tmp_path / "req.jsonl", records)
    windows = run(tmp_path, {"requests": 200, "count": 3}).windows["support-triage"]
    assert [w.requests for w in windows] == [200, 200, 200]
    assert windows[-1].end == UNTIL - 2000 + 1049  # the newest request closes the newest window
    assert windows[0].start == UNTIL - 2000 + 450
    assert windows[-1].targets["canary"].requests == 20
    assert windows[-1].targets["stable"].latencies_ms.tolist() == [120.0] * 180


def test_a_window_without_traffic_is_empty_not_missing(tmp_path: Path) -> None:
    windows = run(tmp_path, {"duration": "15m", "count": 4}).windows["support-triage"]
    assert len(windows) == 4 and all(w.requests == 0 and not w.targets for w in windows)


def test_captured_texts_are_a_bounded_seeded_sample(
    tmp_path: Path, request_record: Callable[..., dict[str, object]], write_log: Callable[..., Path]
) -> None:
    records = [
        request_record(f"c{i}", UNTIL - 100 + i * 0.1, message=f"ticket {i}", output=f"answer {i}") for i in range(900)
    ]
    write_log(tmp_path / "req.jsonl", records)
    first = run(tmp_path, {"duration": "1h", "count": 1}, text_cap=50).windows["support-triage"][0]
    again = run(tmp_path, {"duration": "1h", "count": 1}, text_cap=50).windows["support-triage"][0]
    assert first.captured == 900 and first.inputs.seen == 900
    assert len(first.inputs.items) == 50 and len(first.targets["stable"].outputs.items) == 50
    assert first.inputs.items == again.inputs.items  # same seed, same sample
    assert len({int(t.split()[1]) // 300 for t in first.inputs.items}) == 3  # spread over the whole stream


def test_reservoir_keeps_every_item_while_it_fits() -> None:
    sample: Reservoir[int] = Reservoir(10, seed=1)
    for i in range(7):
        sample.add(i)
    assert sample.items == list(range(7))


def test_feedback_last_record_per_key_wins_joins_its_request_and_orphans_are_counted(
    tmp_path: Path, request_record: Callable[..., dict[str, object]], write_log: Callable[..., Path]
) -> None:
    write_log(tmp_path / "req.jsonl", [
        request_record("q1", UNTIL - 50, message="charged twice", output='{"intent":"refund","priority":"low"}'),
        request_record("q2", UNTIL - 40, target="canary", message="cannot log in", output='{"intent":"account_access"}'),
        request_record("q3", UNTIL - 30, route="x"),  # another route's request: its feedback is not orphaned
    ])  # fmt: skip
    fb = [
        {"id": "q1", "time": UNTIL, "api_key": "support-app", "score": 0.0, "label": None, "correction": None},
        {"id": "q1", "time": UNTIL, "api_key": "support-app", "score": 0.5,
         "correction": '{"intent":"billing","priority":"low"}'},
        {"id": "q2", "time": UNTIL, "api_key": "support-app", "score": 1.0, "correction": None},
        {"id": "q3", "time": UNTIL, "api_key": "support-app", "score": 1.0, "correction": None},
        {"id": "gone", "time": UNTIL, "api_key": "support-app", "score": 0.2, "correction": "x"},
    ]  # fmt: skip
    write_log(tmp_path / "fb.jsonl", fb)
    found = run(tmp_path, {"duration": "1h", "count": 1})
    window = found.windows["support-triage"][0]
    stable = window.targets["stable"]
    assert stable.feedback_scores.tolist() == [0.5]  # the later record of (q1, support-app) replaced the first
    assert stable.corrections == [('{"intent":"refund","priority":"low"}', '{"intent":"billing","priority":"low"}')]
    assert (stable.feedback_received, stable.feedback_corrections) == (1, 1)
    assert window.targets["canary"].feedback_scores.tolist() == [1.0]
    assert found.orphaned == 1 and found.feedback_read == 5


def test_a_truncated_last_line_is_skipped_and_counted_never_fatal(
    tmp_path: Path, request_record: Callable[..., dict[str, object]], write_log: Callable[..., Path]
) -> None:
    path = write_log(tmp_path / "req.jsonl", [request_record(f"t{i}", UNTIL - 10 + i) for i in range(5)])
    with path.open("a") as handle:
        handle.write('{"id": "t9", "time": 17999')  # a crash mid-write
    found = run(tmp_path, {"duration": "1h", "count": 1})
    assert found.lines_skipped == 1 and found.windows["support-triage"][0].requests == 5


def test_answers_of_an_earlier_release_count_in_latency_but_not_in_the_output_sample(
    tmp_path: Path, request_record: Callable[..., dict[str, object]], write_log: Callable[..., Path]
) -> None:
    # production moved from the base model to adapter v1 while the window filled: the first answers came from
    # the base model and must not be compared with v1's reference
    old = [
        request_record(f"o{i}", UNTIL - 100 + i, message=f"ticket {i}", output="Hi, sorry!", adapter_version=None)
        for i in range(5)
    ]
    new = [
        request_record(f"n{i}", UNTIL - 50 + i, message=f"ticket {i}", output='{"intent":"billing"}') for i in range(20)
    ]
    own = [request_record("m", UNTIL - 1, message="hello", output='{"intent":"refund"}', prompt_version=None)]
    write_log(tmp_path / "req.jsonl", old + new + own)
    serving = {"support-triage": {"stable": ("support-triage-lora/1", "support-triage/1")}}
    part = run(tmp_path, {"requests": 100, "count": 1}, serving=serving).windows["support-triage"][-1].targets["stable"]
    assert part.requests == 26 and len(part.latencies_ms) == 26  # every request counts for latency and errors
    assert part.earlier_release == 5
    assert sorted(set(part.outputs.items)) == ['{"intent":"billing"}', '{"intent":"refund"}']  # own messages: kept
    everything = run(tmp_path, {"requests": 100, "count": 1}).windows["support-triage"][-1].targets["stable"]
    assert "Hi, sorry!" in everything.outputs.items  # without knowing what serves, nothing is left out
