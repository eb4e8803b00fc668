"""`llmops monitor run` against a real MLflow server: the reference from the registry, records, triggers.

The serving adapter is registered with a fine-tune run whose ``train`` data input names the workspace's
training file (the lineage the reference follows), and a passing eval record whose ``report.json`` holds
the per-case outputs. The request log is written here in the gateway's captured-record format (the
end-to-end test through vLLM and the gateway comes with the demo). The embedding model is the real one.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

from llmops.config.gateway import load_gateway_file
from llmops.config.workspace import load_workspace
from llmops.finetune.lineage import TRAINING_CONTEXT
from llmops.finetune.rows import read_rows
from llmops.registry import connect, tags
from llmops.releases import configured_release

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
Cli = Callable[..., subprocess.CompletedProcess[str]]
START = time.time() - 3600  # records of the last hour (windows end now)
DISHES = ["lasagne", "paella", "ramen", "risotto", "tagine", "goulash", "curry", "moussaka"]
THINGS = ["aubergines", "saffron", "tofu", "lentils", "chickpeas", "smoked paprika", "coconut milk", "leeks"]

MONITOR = """\
version: 1
actions: {{}}
routes:
  {route}:
    reference: {{training_data: true, suites: [], outputs: eval_record, max_rows: 600}}
    window: {{requests: 200, count: 2}}
    signals:
      descriptors: {{fields: [intent, priority]}}
      quality:
        json_schema: {{type: object, required: [intent, priority]}}
    alerts:
      - {{name: input-drift, signals: [input_drift], for: 1}}
"""


def rows_of(split: str) -> list[dict[str, object]]:
    text = (REPO / "finetune" / "data" / "support-triage" / f"{split}.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def monitored(mlflow_server, tmp_path: Path) -> dict[str, object]:  # type: ignore[no-untyped-def]
    root = tmp_path / "ws"
    (root / "serving").mkdir(parents=True)
    (root / "data").mkdir()
    shutil.copy(REPO / "llmops.yaml", root / "llmops.yaml")
    env = {"MLFLOW_TRACKING_URI": mlflow_server.url, "LLMOPS_HOME": str(root / ".llmops")}
    route, adapter = f"mon-{uuid.uuid4().hex[:6]}", f"mon-lora-{uuid.uuid4().hex[:6]}"
    train = rows_of("train")
    (root / "data" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train[:600]))
    rows = read_rows(root / "data" / "train.jsonl", display="data/train.jsonl")
    registry = connect(load_workspace(root, env=env))
    run = registry.runs.start("llmops-test-finetune", adapter, {tags.KIND: tags.KIND_FINETUNE})
    stored = registry.datasets.store([root / "data" / "train.jsonl"], fingerprint=rows.fingerprint, name="train",
                                     kind="training", rows=len(rows.rows), source="data/train.jsonl")  # fmt: skip
    registry.datasets.log_input(run.run_id, stored, context=TRAINING_CONTEXT)
    run.finish("FINISHED")
    weights = tmp_path / "adapter"
    weights.mkdir()
    safetensors.numpy.save_file({"lora_A": np.zeros((2, 2), dtype=np.float32)}, str(weights / "adapter.safetensors"))
    (weights / "adapter_config.json").write_text("{}")
    registry.adapters.register(adapter, weights, run.run_id, {tags.DATASET_FINGERPRINT: rows.fingerprint})
    (root / "serving" / "gateway.yaml").write_text(
        f"engines:\n  local: {{url: 'http://127.0.0.1:9'}}\nroutes:\n  {route}:\n    targets:\n"
        f"      - {{name: stable, weight: 1, adapter: {adapter}/1}}\n"
    )
    (root / "serving" / "monitor.yaml").write_text(MONITOR.format(route=route))
    target = load_gateway_file(root / "serving" / "gateway.yaml").routes[route].targets[0]
    release = registry.resolve(configured_release(target, "reference")).release
    report = {"candidate": {"cases": [{"id": f"c{i}", "output": r["target"]} for i, r in enumerate(rows_of("test"))]}}
    (tmp_path / "report.json").write_text(json.dumps(report))
    registry.evals.log(suite="mon", suite_hash="0" * 64, release=release, verdict="pass", metrics={"exact_match": 1.0},
                       artifacts=[tmp_path / "report.json"])  # fmt: skip
    return {"root": root, "env": env, "route": route, "registry": registry, "release_key": release.key,
            "adapter_version": f"{adapter}/1"}  # fmt: skip


def traffic(
    n: int, start: int, *, drifted: bool, request_record: Callable[..., dict[str, object]]
) -> list[dict[str, object]]:
    rng = random.Random(start)
    pool = rows_of("train")[600:]
    records = []
    for i in range(n):
        row = pool[rng.randrange(len(pool))]
        message = str(row["variables"]["message"])  # type: ignore[index]
        if drifted:
            message = (f"Hi! Could you suggest a {rng.choice(DISHES)} recipe with {rng.choice(THINGS)} for "
                       f"{rng.randrange(2, 12)} guests? I cook on a gas stove.")  # fmt: skip
        records.append(request_record(f"q{start + i}", START + start + i, route="", message=message,
                                      output=str(row["target"]), latency_ms=80.0 + rng.random() * 40))  # fmt: skip
    return records


def test_monitor_run_records_in_mlflow_and_alerts_on_drifted_traffic_with_a_trigger(
    monitored: dict[str, object], run_llmops: Cli, request_record: Callable[..., dict[str, object]],
    write_log: Callable[..., Path],
) -> None:  # fmt: skip
    root, env, route = Path(str(monitored["root"])), dict(monitored["env"]), str(monitored["route"])  # type: ignore[call-overload]
    log = root / ".llmops" / "logs" / "gateway-requests.jsonl"
    write_log(
        log,
        [
            dict(r, route=route, adapter_version=monitored["adapter_version"], prompt_version=None)
            for r in traffic(400, 0, drifted=False, request_record=request_record)
        ],
    )
    ok = run_llmops("monitor", "run", "--json", cwd=root, env=env, timeout=600)
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-3000:]
    found = json.loads(ok.stdout)["routes"][route]
    newest = {(r["target"], r["signal"]): r for r in found["windows"][-1]["results"]}
    assert newest[("*", "input_drift")]["level"] == "ok"
    assert newest[("stable", "output_drift")]["level"] in ("ok", "warn")  # reference outputs from the eval record
    assert (
        found["reference"]["rows"] == 600 + 0 and found["release"]["stable"]["release_key"] == monitored["release_key"]
    )
    registry = monitored["registry"]
    records = registry.monitoring.find(route)  # type: ignore[attr-defined]
    assert len(records) == 1 and records[0].run_id == found["record_id"]
    assert records[0].tags[tags.RELEASE_KEY] == monitored["release_key"]
    assert records[0].metrics["stable/output_drift/level"] == 0 or records[0].metrics["stable/output_drift/level"] == 1
    assert "route/input_drift" in records[0].metrics and records[0].level in ("ok", "warn")

    write_log(
        log,
        [
            dict(r, route=route, adapter_version=monitored["adapter_version"], prompt_version=None)
            for r in traffic(200, 400, drifted=True, request_record=request_record)
        ],
        append=True,
    )
    alert = run_llmops("monitor", "run", "--json", cwd=root, env=env, timeout=600)
    assert alert.returncode == 1, alert.stdout[-3000:] + alert.stderr[-3000:]
    found = json.loads(alert.stdout)["routes"][route]
    newest = {(r["target"], r["signal"]): r for r in found["windows"][-1]["results"]}
    assert newest[("*", "input_drift")]["level"] == "alert"
    assert [a["rule"] for a in found["alerts"]] == ["input-drift"] and found["alerts"][0]["fired"] is True
    assert len(found["triggers"]) == 1
    assert [r.level for r in registry.monitoring.find(route)] == ["alert", records[0].level]  # type: ignore[attr-defined]
    assert (root / ".llmops" / "monitor" / route / "latest" / "report.html").is_file()
