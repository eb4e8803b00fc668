"""``llmops logs prune`` on a real MLflow server: expired audit records go, retention records stay and say what ran."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from llmops.config.workspace import load_workspace
from llmops.registry import connect
from llmops.registry.audit import AuditRecord

pytestmark = pytest.mark.integration

Cli = Callable[..., subprocess.CompletedProcess[str]]
DAY_MS = 86_400_000


def test_prune_deletes_expired_audit_records_and_records_each_policy(
    mlflow_server,
    invoke_llmops: Cli,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    env = {"MLFLOW_TRACKING_URI": mlflow_server.url, "LLMOPS_ACTOR": "dpo@example.com"}
    (tmp_path / "llmops.yaml").write_text("version: 1\nretention:\n  audit_days: 365\n")
    audit = connect(load_workspace(tmp_path, env=env)).audit
    route, start_ms = f"route-{uuid.uuid4().hex[:6]}", int(time.time() * 1000)
    audit.append(AuditRecord("release", route, "production", "1", "2", "ci", timestamp_ms=start_ms - 400 * DAY_MS))
    audit.append(AuditRecord("release", route, "production", "2", "3", "ci", timestamp_ms=start_ms - 10 * DAY_MS))
    kept_ms = start_ms - 500 * DAY_MS - 7  # an earlier run's retention record, older than audit_days
    audit.append(AuditRecord("retention", "audit", "", None, None, "ops", reason="older than 365 days",
                             outcome="pruned", detail="{}", timestamp_ms=kept_ms))  # fmt: skip
    logs = tmp_path / ".llmops" / "logs"
    logs.mkdir(parents=True)
    old = time.time() - 200 * 86_400
    (logs / "gateway-requests.20260101T000000Z-1.jsonl").write_bytes(
        orjson.dumps({"id": "a" * 32, "time": old}) + b"\n"
    )

    done = invoke_llmops("logs", "prune", "--json", "--workspace", str(tmp_path), cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    results = {r["object"]: r for r in json.loads(done.stdout)}
    assert results["audit"]["removed"] >= 1 and results["request-log"]["removed"] == 1
    assert results["request-log"]["files"] == ["logs/gateway-requests.20260101T000000Z-1.jsonl"]

    assert [r.to_version for r in audit.records(route)] == ["3"]  # the 400-day-old move is deleted
    survivors = audit.records(kind="retention", since_ms=kept_ms, until_ms=kept_ms + 1)
    assert [r.actor for r in survivors] == ["ops"]  # retention records are never pruned

    listed = invoke_llmops("audit", "--kind", "retention", "--actor", "dpo@example.com", "--since", str(start_ms / 1000),
                           "--json", "--workspace", str(tmp_path), cwd=tmp_path, env=env)  # fmt: skip
    assert listed.returncode == 0, listed.stdout + listed.stderr
    rows = {r["object"]: r for r in json.loads(listed.stdout)}
    assert {o: rows[o]["record_id"] for o in rows} == {o: results[o]["record_id"] for o in results}
    detail = json.loads(rows["audit"]["detail"])
    assert detail["removed"] == results["audit"]["removed"] and detail["files"] == []
    assert detail["cutoff"] == pytest.approx(time.time() - 365 * 86_400, abs=300)
    assert rows["request-log"]["reason"] == "older than 183 days" and rows["request-log"]["outcome"] == "pruned"
