"""`llmops monitor run --no-record`: status table, exit codes, report.json / report.html, no registry touched.

The reference comes from a data file (no registry: the workspace's tracking URI points nowhere, so any
registry call would fail the run with exit 2); embedding drift is off here (its model is exercised by
the integration test and the benchmark).
"""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from llmops.monitor.multitest import holm

REPO = Path(__file__).resolve().parents[2]
Cli = Callable[..., subprocess.CompletedProcess[str]]
NOW = 1_800_000_000.0
ANSWERS = ['{"intent":"billing","priority":"low"}', '{"intent":"refund","priority":"high"}']

SPEC = """\
version: 1
routes:
  support-triage:
    reference: {training_data: false, suites: [], outputs: none, data: [data/ref.jsonl]}
    window: {duration: 1h, count: 3}
    signals:
      input_drift: {enabled: false}
      output_drift: {enabled: false}
      descriptors: {fields: [intent, priority], min_samples: 30}
      quality:
        json_schema: {type: object, required: [intent, priority]}
      latency: {p95_ms: {warn: 1000, alert: 2000}}
    alerts:
      - {name: slow, signals: ["latency.*"], for: 2}
"""


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    rows = [json.loads(x) for x in (REPO / "finetune/data/support-triage/train.jsonl").read_text().splitlines()]
    (tmp_path / "serving").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "serving" / "monitor.yaml").write_text(SPEC)
    (tmp_path / "data" / "ref.jsonl").write_text("\n".join(json.dumps(r) for r in rows[:300]) + "\n")
    (tmp_path / "llmops.yaml").write_text("registry: {tracking_uri: 'http://127.0.0.1:9'}\n")
    return tmp_path


def traffic(ws: Path, request_record: Callable[..., dict[str, object]], write_log: Callable[..., Path],
            *, latency_ms: float) -> None:  # fmt: skip
    rows = [json.loads(x) for x in (REPO / "finetune/data/support-triage/train.jsonl").read_text().splitlines()]
    rng = random.Random(0)
    records = []
    for hour in (3, 2):  # the two older windows; the newest (last hour) stays empty for the canary
        for i in range(150):
            row = rows[300 + rng.randrange(800)]
            target = "stable" if i % 5 else "canary"
            records.append(request_record(
                f"h{hour}-{i}", NOW - hour * 3600 + 10 * i, target=target, latency_ms=latency_ms,
                message=row["variables"]["message"], output=ANSWERS[i % 2],
            ))  # fmt: skip
    # the newest window: 60 more rows of the reference's distribution; its two KS tests read alert by chance in
    # ~1 sample of 20 even after the Holm correction (rows 1100-1159 of the current data do), these rows do not
    records += [request_record(f"n{i}", NOW - 600 + i, latency_ms=latency_ms, message=rows[1200 + i]["variables"]["message"],
                               output=ANSWERS[i % 2]) for i in range(60)]  # fmt: skip
    path = write_log(ws / ".llmops" / "logs" / "gateway-requests.jsonl", records)
    with path.open("a") as handle:
        handle.write('{"id": "cut", "time": 17')  # a crash mid-write: skipped and counted


def monitor(invoke_llmops: Cli, ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return invoke_llmops(
        "monitor", "run", "--no-record", "--until", str(NOW), *args, cwd=ws, env={"LLMOPS_HOME": str(ws / ".llmops")}
    )


def test_ok_traffic_exits_0_and_writes_both_reports(
    ws: Path, invoke_llmops: Cli, request_record: Callable[..., dict[str, object]], write_log: Callable[..., Path]
) -> None:
    traffic(ws, request_record, write_log, latency_ms=150.0)
    result = monitor(invoke_llmops, ws)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "latency.p95_ms" in result.stdout and "1 partial line(s) skipped" in result.stdout
    latest = ws / ".llmops" / "monitor" / "support-triage" / "latest"
    report = json.loads((latest / "report.json").read_text())
    assert report["lines_skipped"] == 1 and report["records_read"] == 360
    assert [w["requests"] for w in report["windows"]] == [150, 150, 60]
    newest = {(r["target"], r["signal"]): r for r in report["windows"][-1]["results"]}
    assert newest[("stable", "latency.p95_ms")]["level"] == "ok"
    assert newest[("stable", "latency.p95_ms")]["threshold"] == 2000
    assert newest[("*", "input.length")]["statistic"] and newest[("*", "input.length")]["p_value"] is not None
    tests = [newest[("*", "input.length")], newest[("*", "input.non_letter_share")]]  # the window's only tests
    for test, adjusted in zip(tests, holm([t["p_value"] for t in tests]), strict=True):
        assert test["correction"] == "holm" and test["details"]["family_tests"] == 2
        assert test["value"] == test["p_value_adjusted"] == pytest.approx(adjusted)
    assert newest[("canary", "latency.p95_ms")]["level"] == "insufficient_data"  # no canary traffic in it
    assert newest[("stable", "output.length")]["level"] == "insufficient_data"  # no reference outputs
    assert (
        any("no passing eval record" in n or "outputs" in n for n in report["reference"]["notes"])
        or report["reference"]["outputs"] == {}
    )
    html = (latest / "report.html").read_text()
    assert "p-value (raw → adjusted)" in html and "(holm, 2 tests)" in html
    assert "data:image/png;base64," in html and "<script" not in html and "http" not in html.split("<body>")[1]


def test_an_alert_level_signal_exits_1_and_shows_the_rule_that_holds_without_firing_it(
    ws: Path, invoke_llmops: Cli, request_record: Callable[..., dict[str, object]], write_log: Callable[..., Path]
) -> None:
    traffic(ws, request_record, write_log, latency_ms=3000.0)
    result = monitor(invoke_llmops, ws, "--json")
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    route = doc["routes"]["support-triage"]
    assert route["level"] == "alert" and doc["level"] == "alert"
    assert [a["rule"] for a in route["alerts"]] == ["slow"] and route["alerts"][0]["fired"] is False
    assert route["triggers"] == [] and route["record_id"] is None


def test_a_window_option_and_an_empty_log_give_insufficient_data_not_ok(ws: Path, invoke_llmops: Cli) -> None:
    result = monitor(invoke_llmops, ws, "--window", "15m", "--json")
    assert result.returncode == 0, result.stderr
    route = json.loads(result.stdout)["routes"]["support-triage"]
    assert [w["end"] - w["start"] for w in route["windows"]] == [900.0] * 3
    assert route["level"] == "insufficient_data"
    assert {r["level"] for w in route["windows"] for r in w["results"]} == {"insufficient_data"}


def test_an_unknown_route_is_an_error(ws: Path, invoke_llmops: Cli) -> None:
    result = monitor(invoke_llmops, ws, "--route", "nope")
    assert result.returncode == 2 and "no route nope" in result.stderr
