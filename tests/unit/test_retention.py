"""Retention: ``llmops logs prune`` removes expired log records and audit records, and records that it did."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from llmops.config.workspace import RetentionSettings, load_workspace
from llmops.errors import ConfigError
from llmops.gateway.logreader import iter_records
from llmops.governance.retention import DAY_S, Targets, prune, prune_log_files
from llmops.registry import connect
from llmops.registry.audit import AuditRecord
from llmops.rollout.samples import ArmReader, ArmSelector

Cli = Callable[..., subprocess.CompletedProcess[str]]
NOW = 1_796_000_000.0  # 2026-11-30
OLD, NEW = NOW - 200 * DAY_S, NOW - 10 * DAY_S  # before / after the default 183-day cutoff
ARM = ArmSelector("stable", None, None)


def line(n: int, when: float) -> bytes:
    record = {"id": f"{n:032x}", "time": when, "route": "r", "target": "stable", "status": 200, "latency_ms": 5.0}
    return orjson.dumps(record) + b"\n"


def rotated(logs: Path, stamp: str, lines: list[bytes], stem: str = "gateway-requests") -> Path:
    logs.mkdir(parents=True, exist_ok=True)
    path = logs / f"{stem}.{stamp}-1.jsonl"
    path.write_bytes(b"".join(lines))
    return path


def test_expired_rotated_files_are_deleted_mixed_ones_rewritten_and_new_ones_untouched(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    old = rotated(logs, "20260501T000000Z", [line(1, OLD), line(2, OLD + 1)])
    undated = [b"not json at all\n", b'{"id": "x", "route": "r"}\n']  # cannot be dated: kept
    mixed_lines = [line(3, OLD + 2), undated[0], line(4, NEW), line(5, OLD + 3), undated[1], line(6, NEW + 1)]
    mixed = rotated(logs, "20260601T000000Z", mixed_lines)
    new = rotated(logs, "20261120T000000Z", [line(7, NEW + 2)])
    new_bytes, new_inode = new.read_bytes(), new.stat().st_ino

    result = prune_log_files("request-log", [old, mixed, new], 183, now=NOW)

    assert not old.exists()
    assert mixed.read_bytes() == undated[0] + line(4, NEW) + undated[1] + line(6, NEW + 1)
    assert new.read_bytes() == new_bytes and new.stat().st_ino == new_inode
    assert [(f.action, f.removed, f.undated) for f in result.files] == [
        ("deleted", 2, 0),
        ("rewritten", 2, 2),
        ("unchanged", 0, 0),
    ]
    assert (result.removed, result.oldest, result.newest, result.cutoff) == (4, OLD, OLD + 3, NOW - 183 * DAY_S)
    assert sorted(p.name for p in logs.iterdir()) == sorted([mixed.name, new.name])  # no temporary file left


def test_the_live_file_is_never_rewritten_under_a_writer(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    live = logs / "gateway-requests.jsonl"
    logs.mkdir()
    live.write_bytes(line(1, OLD) + line(2, NEW))
    before = live.read_bytes()

    skipped = prune_log_files("request-log", [live], 183, now=NOW)
    assert live.read_bytes() == before
    [f] = skipped.files
    assert (f.action, f.removed, f.expired, skipped.removed) == ("skipped", 0, 1, 0)
    assert "once it rotates" in f.note and "--include-live" in f.note

    with live.open("ab"):  # a writer holds it open: even --include-live leaves it alone
        held = prune_log_files("request-log", [live], 183, now=NOW, include_live=True)
    assert live.read_bytes() == before
    assert held.files[0].action == "skipped" and "held open by PID" in held.files[0].note

    freed = prune_log_files("request-log", [live], 183, now=NOW, include_live=True)  # no writer: pruned
    assert (freed.files[0].action, freed.removed) == ("rewritten", 1)
    assert live.read_bytes() == line(2, NEW)


@pytest.fixture
def ws_root(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_dry_run_reports_what_would_go_and_writes_nothing(ws_root: Path) -> None:
    ws = load_workspace(ws_root, env={})
    registry = connect(ws)
    logs = ws.home / "logs"
    files = [
        rotated(logs, "20260501T000000Z", [line(1, OLD)]),
        rotated(logs, "20260601T000000Z", [line(2, OLD), line(3, NEW)]),
    ]
    feedback = [rotated(logs, "20260501T000000Z", [line(1, OLD)], stem="feedback")]
    registry.audit.append(AuditRecord("release", "r", "production", "1", "2", "ci", timestamp_ms=int(OLD * 1000)))
    before = _tree(logs)
    policy = RetentionSettings(audit_days=30)

    results = prune(ws, registry, Targets(tuple(files), tuple(feedback)), actor="ops", policy=policy, dry_run=True,
                    now=NOW)  # fmt: skip

    assert [(r.object, r.removed, r.record_id) for r in results] == [
        ("request-log", 2, None), ("feedback-log", 1, None), ("audit", 1, None)
    ]  # fmt: skip
    assert [f.action for f in results[0].files] == ["deleted", "rewritten"]
    assert _tree(logs) == before
    assert [r.kind for r in registry.audit.records()] == ["release"]  # nothing deleted, nothing recorded


def test_each_object_gets_a_retention_record_and_audit_days_spares_retention_records(ws_root: Path) -> None:
    ws = load_workspace(ws_root, env={})
    registry = connect(ws)
    logs = ws.home / "logs"
    old_file = rotated(logs, "20260501T000000Z", [line(1, OLD), line(2, OLD + 5)])
    mixed = rotated(logs, "20260601T000000Z", [line(3, OLD + 9), line(4, NEW)])
    audit = registry.audit
    ancient = AuditRecord("release", "r", "production", "1", "2", "ci", timestamp_ms=int((NOW - 400 * DAY_S) * 1000))
    recent = AuditRecord("release", "r", "production", "2", "3", "ci", timestamp_ms=int((NOW - 5 * DAY_S) * 1000))
    earlier_run = AuditRecord("retention", "request-log", "", None, None, "ops", reason="older than 183 days",
                              outcome="pruned", detail="{}", timestamp_ms=int((NOW - 500 * DAY_S) * 1000))  # fmt: skip
    for record in (ancient, recent, earlier_run):
        audit.append(record)

    results = prune(ws, registry, Targets((old_file, mixed), ()), actor="ops@example.com",
                    policy=RetentionSettings(audit_days=365), now=NOW)  # fmt: skip

    written = {r.object: r for r in audit.records(kind="retention") if r.timestamp_ms != earlier_run.timestamp_ms}
    assert sorted(written) == ["audit", "feedback-log", "request-log"]  # one per object, even with nothing removed
    request_log = written["request-log"]
    assert (request_log.actor, request_log.outcome, request_log.alias, request_log.reason) == (
        "ops@example.com", "pruned", "", "older than 183 days"
    )  # fmt: skip
    assert json.loads(request_log.detail) == {
        "cutoff": NOW - 183 * DAY_S, "removed": 3, "oldest": OLD, "newest": OLD + 9,
        "files": ["logs/gateway-requests.20260501T000000Z-1.jsonl", "logs/gateway-requests.20260601T000000Z-1.jsonl"],
    }  # fmt: skip
    assert json.loads(written["feedback-log"].detail) == {
        "cutoff": NOW - 183 * DAY_S, "removed": 0, "oldest": None, "newest": None, "files": []
    }  # fmt: skip
    assert json.loads(written["audit"].detail)["removed"] == 1
    assert written["audit"].reason == "older than 365 days"
    assert [r.record_id for r in results] == [written[o].record_id for o in ("request-log", "feedback-log", "audit")]
    left = audit.records(kind="release")
    assert [r.to_version for r in left] == ["3"]  # the 400-day-old move is gone, the recent one stays
    assert any(r.timestamp_ms == int((NOW - 500 * DAY_S) * 1000) for r in audit.records(kind="retention"))


def test_readers_count_each_request_once_after_a_rotated_file_is_rewritten(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    mixed = rotated(logs, "20260601T000000Z", [line(1, OLD), line(2, NEW), line(3, NEW + 1)])
    (logs / "gateway-requests.jsonl").write_bytes(line(4, NEW + 2))
    reader = ArmReader(tmp_path, ["logs/gateway-requests*.jsonl"])
    canary, stable = reader.read("r", 0, canary=ArmSelector("canary", None, None), stable=ARM)
    assert len(stable.errors) == 4

    prune_log_files("request-log", [mixed], 183, now=NOW)  # a new inode under the same name
    with (logs / "gateway-requests.jsonl").open("ab") as live:
        live.write(line(5, NEW + 3))
    canary, stable = reader.read("r", 0, canary=ArmSelector("canary", None, None), stable=ARM)
    assert len(stable.errors) == 5  # the kept records are not counted twice; the new one is read
    assert [r["id"][-1] for r in iter_records(logs / "gateway-requests*.jsonl")] == ["2", "3", "4", "5"]


def test_retention_settings_are_checked() -> None:
    assert RetentionSettings() == RetentionSettings(request_logs_days=183, feedback_days=183, audit_days=None)
    for bad in ({"request_logs_days": 0}, {"feedback_days": -1}, {"audit_days": 0}):
        with pytest.raises(ValueError):
            RetentionSettings.model_validate(bad)


def _write_workspace(root: Path, retention: str) -> None:
    (root / "llmops.yaml").write_text(f"version: 1\nretention:\n{retention}")


def test_cli_prunes_the_gateway_logs_and_audit_lists_the_records(invoke_llmops: Cli, ws_root: Path) -> None:
    _write_workspace(ws_root, "  request_logs_days: 30\n  feedback_days: 200\n")
    now = time.time()
    logs = ws_root / ".llmops" / "logs"
    gone = rotated(logs, "20260101T000000Z", [line(1, now - 40 * DAY_S)])
    mixed = rotated(logs, "20260201T000000Z", [line(2, now - 35 * DAY_S), line(3, now - 20 * DAY_S)])
    live = logs / "gateway-requests.jsonl"
    live.write_bytes(line(4, now - 31 * DAY_S))
    (logs / "feedback.jsonl").write_bytes(line(1, now - 40 * DAY_S))

    validated = invoke_llmops("validate", "--workspace", str(ws_root), cwd=ws_root, env={})
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "retention.request_logs_days" in validated.stderr and "six months" in validated.stderr

    dry = invoke_llmops("logs", "prune", "--dry-run", "--workspace", str(ws_root), cwd=ws_root, env={})
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "would remove 2 record(s) older than 30 days" in dry.stdout and gone.exists()

    env = {"LLMOPS_ACTOR": "ops@example.com"}
    done = invoke_llmops("logs", "prune", "--json", "--workspace", str(ws_root), cwd=ws_root, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    by_object = {r["object"]: r for r in json.loads(done.stdout)}
    assert sorted(by_object) == ["feedback-log", "request-log"]  # audit_days unset: audit records kept forever
    assert by_object["request-log"]["removed"] == 2
    assert [f["action"] for f in by_object["request-log"]["file_results"]] == ["deleted", "rewritten", "skipped"]
    assert by_object["feedback-log"]["removed"] == 0
    assert not gone.exists() and mixed.read_bytes() == line(3, now - 20 * DAY_S)
    assert live.read_bytes() == line(4, now - 31 * DAY_S)

    listed = invoke_llmops("audit", "--kind", "retention", "--json", "--workspace", str(ws_root), cwd=ws_root, env={})
    assert listed.returncode == 0, listed.stdout + listed.stderr
    rows: list[dict[str, Any]] = json.loads(listed.stdout)
    assert sorted((r["object"], r["actor"], r["outcome"]) for r in rows) == [
        ("feedback-log", "ops@example.com", "pruned"), ("request-log", "ops@example.com", "pruned")
    ]  # fmt: skip
    assert {r["record_id"] for r in rows} == {r["record_id"] for r in by_object.values()}


def test_cli_refuses_a_missing_gateway_config(invoke_llmops: Cli, ws_root: Path) -> None:
    done = invoke_llmops("logs", "prune", "--config", "nope.yaml", "--workspace", str(ws_root), cwd=ws_root, env={})
    assert done.returncode != 0 and "--config" in done.stderr


def test_invalid_retention_fails_validation(ws_root: Path) -> None:
    _write_workspace(ws_root, "  request_logs_days: 0\n")
    with pytest.raises(ConfigError):
        load_workspace(ws_root, env={})
