"""`llmops retrain ROUTE` on real components: MLflow server, a tiny fine-tune, vLLM for the route's required suite.

A route serves adapter v1 (promoted); its captured traffic carries feedback corrections. The retrain builds
the dataset, trains v2 from v1 (``init_adapter``) with the production-data lineage, evaluates it on the
route's required suite (which the tiny model fails: reported, exit 1, the candidate stays registered), links
the monitor's trigger run, sets no alias and leaves the route's production pointer where it was.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llmops.finetune.rows import read_rows
from llmops.registry import connect, tags

pytestmark = pytest.mark.integration

Cli = Callable[..., subprocess.CompletedProcess[str]]
STEPS = 2
GATEWAY = """version: 1
engines:
  local: {{url: "{url}", api_key_env: LLMOPS_ENGINE_KEY}}
routes:
  {route}:
    targets:
      - {{name: stable, weight: 90, release: production, prompt: "{prompt}"}}
      - {{name: canary, weight: 10, release: canary, prompt: "{prompt}"}}
"""
INTENTS = ("billing", "shipping", "refund", "account_access", "bug")


def _captured(rid: str, route: str, message: str, output: str, when: float) -> dict[str, Any]:
    return {
        "id": rid, "time": when, "api_key": "support-app", "key_hash": "h", "route": route, "target": "stable",
        "prompt_version": "p/1", "adapter_version": "a/1", "stream": False, "status": 200, "latency_ms": 12.0,
        "ttft_ms": None, "tokens_in": 40, "tokens_out": 9, "error": None, "captured": True,
        "input": {"variables": {"message": message}}, "output": output,
    }  # fmt: skip


def _write_logs(home: Path, route: str, promoted_at: float) -> dict[str, str]:
    """A request log (with one crash-truncated line) and a feedback log; returns request id -> correction."""
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    records, feedback, corrections = [], [], {}
    now = time.time()
    for i in range(8):
        rid = f"req-{i}"
        message = f"Ticket {i}: my order {1000 + i} from [EMAIL] has a problem with {INTENTS[i % 5]}."
        records.append(_captured(rid, route, message, '{"intent":"other","priority":"low"}', now))
        corrections[rid] = json.dumps({"intent": INTENTS[i % 5], "priority": "high"}, separators=(",", ":"))
        feedback.append({"id": rid, "time": now, "api_key": "support-app", "score": 0.0, "label": "wrong",
                         "correction": corrections[rid], "comment": None})  # fmt: skip
    # the suite's case: never trained on; a request from before the release was set: outside the window
    records.append(_captured("req-case", route, "refund please", "x", now))
    records.append(_captured("req-old", route, "An old ticket", "x", promoted_at - 3600))
    for rid in ("req-case", "req-old"):
        feedback.append({"id": rid, "time": now, "api_key": "support-app", "score": 0.0, "label": None,
                         "correction": '{"intent":"refund","priority":"low"}', "comment": None})  # fmt: skip
    lines = [json.dumps(r) for r in records]
    (logs / "gateway-requests.jsonl").write_text("\n".join(lines) + '\n{"id": "req-trunc", "ti')
    (logs / "feedback.jsonl").write_text("".join(json.dumps(f) + "\n" for f in feedback))
    return corrections


def test_retrain_registers_an_unpromoted_candidate_with_production_lineage(
    ft: Any, vllm_engine: Any, invoke_llmops: Cli, write_required_suite: Callable[[Path, str], Path]
) -> None:
    route = f"triage-{uuid.uuid4().hex[:6]}"
    adapter = ft.adapter("support-triage")
    ft.write_job("support-triage", training={"max_steps": STEPS})
    env = {**ft.env, **vllm_engine.env}
    trained = invoke_llmops("finetune", "run", "finetune/support-triage.yaml", cwd=ft.root, env=env)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    (ft.root / "serving").mkdir(exist_ok=True)
    (ft.root / "serving" / "gateway.yaml").write_text(
        GATEWAY.format(url=vllm_engine.url, route=route, prompt=ft.prompt_ref)
    )
    write_required_suite(ft.root, route)
    promoted = invoke_llmops("promote", route, "--adapter", f"{adapter}/1", "--prompt", ft.prompt_ref, "--force",
                             "--reason", "initial release", cwd=ft.root, env=env)  # fmt: skip
    assert promoted.returncode == 0, promoted.stderr
    registry = connect(ft.ws)
    before = registry.pointers.at_stage(route, "production")
    assert before is not None
    corrections = _write_logs(ft.ws.home, route, time.time())
    trigger = registry.runs.start("llmops-monitoring-test", "trigger", {"llmops.kind": "trigger"}).run_id

    refused = invoke_llmops("retrain", route, "--min-records", "9", cwd=ft.root, env=env)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "8 usable production row(s)" in refused.stderr and "nothing trained" in refused.stderr
    assert [v.version for v in registry.adapters.versions(adapter)] == [1]

    result = invoke_llmops("retrain", route, "--trigger", trigger, "--min-records", "5", "--json", cwd=ft.root, env=env)
    assert result.returncode == 1, result.stdout + result.stderr  # the tiny model fails the required suite
    out = json.loads(result.stdout)
    assert out["candidate"] == f"{adapter}/2" and out["init_adapter"] == f"{adapter}/1"
    assert out["promoted"] is False and out["passed"] is False
    assert [(e["suite"], e["verdict"]) for e in out["evals"]] == [("gate", "fail")]
    counts = out["counts"]
    assert counts["corrections"] == 8 and counts["original_rows"] == 64 and counts["skipped_lines"] == 1
    assert counts["dropped"]["overlap_eval"] == 1  # the suite's case "refund please"

    # the stored dataset: original rows + corrections, fingerprinted as the fine-tune logged it
    stored = ft.ws.home / "datasets" / out["fingerprint"] / "train.jsonl"
    assert out["dataset"] == str(stored) and read_rows(stored).fingerprint == out["fingerprint"]
    rows = [json.loads(line) for line in stored.read_text().splitlines()]
    assert len(rows) == 72
    produced = {r["meta"]["request_id"]: r["target"] for r in rows if r.get("meta", {}).get("source") == "production"}
    assert produced == corrections
    assert not any(r["variables"].get("message") == "refund please" for r in rows)

    # the candidate: continues v1, carries the production-data lineage, has no alias
    v2 = registry.adapters.get(f"{adapter}/2")
    v1 = registry.adapters.get(f"{adapter}/1")
    assert v2.tags[tags.INIT_ADAPTER] == f"{adapter}/1@{v1.sha256}"
    assert v2.tags[tags.DATASET_FINGERPRINT] == out["fingerprint"] == v2.tags[tags.RETRAIN_DATASET]
    assert v2.tags[tags.RETRAIN_TRIGGER] == trigger and v2.tags[tags.RETRAIN_ROUTE] == route
    assert v2.tags[tags.RETRAIN_RUN] == out["retrain_run_id"]
    since, until = (float(x) for x in v2.tags[tags.RETRAIN_WINDOW].split(".."))
    assert since == pytest.approx(out["since"], abs=0.01) and until > since
    assert json.loads(v2.tags[tags.RETRAIN_COUNTS])["corrections"] == 8
    assert {v.version: v.aliases for v in registry.adapters.versions(adapter)} == {1: ("production",), 2: ()}
    after = registry.pointers.at_stage(route, "production")
    assert after is not None and after.version == before.version and after.release == before.release

    # the eval record of the candidate, and the trigger linked to everything
    record = registry.evals.get(out["evals"][0]["record_id"])
    assert record.verdict == "fail" and str(record.release.adapter) == f"{adapter}/2"
    linked = registry.runs.find(trigger)
    assert linked is not None
    assert linked.tags[tags.RETRAIN_CANDIDATE] == f"{adapter}/2"
    assert linked.tags[tags.RETRAIN_DATASET] == out["fingerprint"]
    assert linked.tags[tags.RETRAIN_FINETUNE_RUN] == out["finetune_run_id"] == v2.run_id
    assert linked.tags[tags.RETRAIN_EVAL_RECORDS] == out["evals"][0]["record_id"]
    assert json.loads(linked.tags[tags.RETRAIN_EVAL_VERDICTS]) == {"gate": "fail"}
    retrain_run = registry.runs.find(out["retrain_run_id"])
    assert retrain_run is not None and retrain_run.status == "FINISHED"
