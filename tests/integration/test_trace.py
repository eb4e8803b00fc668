"""``llmops trace`` against a real MLflow server: answers traced to the release serving *then*, its data,
evals and approvers; base-model and shadow answers; unknown, pruned and broken chains.

The registry history is made with the real services (prompt push, a tracked training run with stored
datasets, an adapter version with lineage tags, eval records, gated promotions); the request log is written
by the test, as the gateway writes it, with request times between the promotions.
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

from llmops.config.workspace import Workspace, load_workspace
from llmops.evals.files import load_suite
from llmops.finetune.lineage import TRAINING_CONTEXT, lineage_tags
from llmops.finetune.rows import read_rows
from llmops.promotion import promote
from llmops.registry import Registry, connect
from llmops.registry.audit import AuditRecord
from llmops.release import Release
from llmops.requestid import new_request_id

pytestmark = pytest.mark.integration

Cli = Callable[..., subprocess.CompletedProcess[str]]
TRAIN = '{"messages": [{"role": "user", "content": "refund  please"}, {"role": "assistant", "content": "x"}]}\r\n'


def _eval_record(registry: Registry, ws: Workspace, adapter: str | None, prompt: str) -> str:
    suite, _, case_bytes = load_suite(ws.root / "evals" / "gate.yaml")
    release = registry.resolve(Release.of("reference", adapter, prompt)).release
    return registry.evals.log(
        suite=suite.name, suite_hash=suite.suite_hash(case_bytes), release=release, verdict="pass",
        metrics={"exact_match": 0.75, "json_valid": 1.0},
    )  # fmt: skip


def _trained_adapter(registry: Registry, ws: Workspace, name: str, adapter_dir: Path, prompt: str) -> str:
    """An adapter version as a fine-tune registers it: a run with its stored train file as input, lineage tags."""
    train = ws.root / "finetune" / "data" / "train.jsonl"
    train.parent.mkdir(parents=True, exist_ok=True)
    train.write_bytes(TRAIN.encode())
    rows = read_rows(train, display="finetune/data/train.jsonl")
    run = registry.runs.start("llmops-finetune", f"{name}-run", {"llmops.kind": "finetune", "llmops.job": name})
    info = registry.datasets.store([train], fingerprint=rows.fingerprint, name=f"{name}-train", kind="training",
                                   rows=len(rows.rows), source="finetune/data/train.jsonl")  # fmt: skip
    registry.datasets.log_input(run.run_id, info, context=TRAINING_CONTEXT)
    run.finish("FINISHED")
    lineage = lineage_tags(
        base_model="reference", base_model_sha256="b" * 64, dataset_fingerprint=rows.fingerprint,
        prompt_version=prompt, git_commit="c" * 40, job_spec_sha256="d" * 64, run_id=run.run_id,
    )  # fmt: skip
    return registry.adapters.register(name, adapter_dir, run.run_id, lineage).ref


@pytest.fixture
def history(
    mlflow_server: Any, git_workspace: Any, tmp_path: Path, invoke_llmops: Cli, fake_adapter: Callable[..., Path],
    write_required_suite: Callable[[Path, str], Path], request_record: Callable[..., dict[str, Any]],
    write_log: Callable[..., Path],
) -> dict[str, Any]:  # fmt: skip
    """production = base model + prompt (forced); then the adapter to canary, then to production (gated);
    one request logged after each move, a shadow answer, feedback."""
    env = {"MLFLOW_TRACKING_URI": mlflow_server.url, "LLMOPS_ACTOR": "release-manager"}
    root = git_workspace.root
    assert invoke_llmops("prompts", "push", cwd=root, env=env).returncode == 0
    route = f"triage-{uuid.uuid4().hex[:6]}"
    prompt = f"{git_workspace.name('support-triage')}/1"
    write_required_suite(root, route)
    ws = load_workspace(root, env=env)
    registry = connect(ws)
    adapter = _trained_adapter(registry, ws, route, fake_adapter(tmp_path / "adapter"), prompt)
    records = []

    def served(target: str, adapter_version: str | None, **extra: Any) -> str:
        time.sleep(0.05)
        rid = new_request_id()
        records.append(request_record(rid, time.time(), route=route, target=target, prompt_version=prompt,
                                      adapter_version=adapter_version, **extra))  # fmt: skip
        time.sleep(0.05)
        return rid

    promote(
        ws,
        route,
        adapter=None,
        prompt=prompt,
        stage="production",
        force=True,
        reason="first release: base model",
        actor_name="release-manager",
    )
    base_answer = served("stable", None)
    evals = _eval_record(registry, ws, adapter, prompt)
    promote(ws, route, adapter=adapter, prompt=prompt, stage="canary", actor_name="release-manager")
    canary_answer = served("canary", adapter)
    promote(ws, route, adapter=adapter, prompt=prompt, stage="production", actor_name="release-manager")
    production_answer = served("stable", adapter)
    shadow_answer = served("shadow", adapter, shadow_of=production_answer)
    late_canary = served("canary", adapter)  # canary and production now point at the same release
    logs = root / ".llmops" / "logs"
    write_log(logs / "gateway-requests.jsonl", records)
    write_log(logs / "feedback.jsonl", [{"id": production_answer, "time": time.time(), "api_key": "support-app",
                                         "score": 0.0, "label": "wrong-intent"}])  # fmt: skip
    return {"env": env, "root": root, "route": route, "adapter": adapter, "prompt": prompt, "registry": registry,
            "evals": evals, "base": base_answer, "canary": canary_answer, "production": production_answer,
            "shadow": shadow_answer, "late_canary": late_canary, "train": (root / "finetune" / "data" / "train.jsonl").read_bytes()}  # fmt: skip


def _trace(invoke_llmops: Cli, h: dict[str, Any], rid: str, *args: str) -> subprocess.CompletedProcess[str]:
    return invoke_llmops("trace", rid, "--json", *args, cwd=h["root"], env=h["env"])


def _traced(invoke_llmops: Cli, h: dict[str, Any], rid: str) -> dict[str, Any]:
    done = _trace(invoke_llmops, h, rid)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_answers_trace_to_the_release_serving_then_with_data_evals_and_approvers(
    history: dict[str, Any], invoke_llmops: Cli, tmp_path: Path
) -> None:
    h = history
    canary = _traced(invoke_llmops, h, h["canary"])
    assert canary["served_by"]["stage"] == "canary"
    assert canary["lineage"]["release"]["adapter"] == h["adapter"]
    assert canary["lineage"]["prompt"]["ref"] == h["prompt"]
    assert canary["lineage"]["prompt"]["git_commit"] not in ("", "not recorded")
    adapter = canary["lineage"]["adapter"]
    assert adapter["base_model_sha256"] == "b" * 64 and adapter["job_spec_sha256"] == "d" * 64
    [data] = adapter["datasets"]
    assert data["role"] == "train" and data["stored"] and data["path"] == "finetune/data/train.jsonl"
    assert [e["run_id"] for e in canary["lineage"]["evals"]] == [h["evals"]]
    assert canary["lineage"]["evals"][0]["metrics"]["exact_match"] == 0.75
    moved = [a for a in canary["approvals"] if a["kind"] == "release"]
    assert moved[0]["actor"] == "release-manager" and moved[0]["alias"] == "canary" and not moved[0]["forced"]
    assert canary["gaps"] == [] and canary["not_recorded"] == []

    production = _traced(invoke_llmops, h, h["production"])
    assert production["served_by"]["stage"] == "production"
    assert production["served_by"]["pointer_version"] == canary["served_by"]["pointer_version"]
    assert production["shadows"] == [h["shadow"]]
    assert production["feedback"][0]["label"] == "wrong-intent"
    # the same answer traced again gives the same digest, and --verify recomputes it from the saved file
    again = _trace(invoke_llmops, h, h["production"])
    assert json.loads(again.stdout)["digest"] == production["digest"]
    saved = tmp_path / "trace.json"
    saved.write_text(again.stdout)
    assert invoke_llmops("trace", h["production"], "--verify", str(saved), cwd=h["root"]).returncode == 0
    tampered = json.loads(again.stdout)
    tampered["lineage"]["evals"][0]["metrics"]["exact_match"] = 0.99
    saved.write_text(json.dumps(tampered))
    assert invoke_llmops("trace", h["production"], "--verify", str(saved), cwd=h["root"]).returncode == 1
    # the dataset named by the chain comes back byte-identical
    pulled = invoke_llmops("data", "pull", production["lineage"]["adapter"]["datasets"][0]["fingerprint"], "-o",
                           str(tmp_path / "pulled"), cwd=h["root"], env=h["env"])  # fmt: skip
    assert pulled.returncode == 0, pulled.stderr
    assert (tmp_path / "pulled" / "train.jsonl").read_bytes() == h["train"]

    # the answer given before the adapter was promoted traces to the base-model release that served it then
    base = _traced(invoke_llmops, h, h["base"])
    assert base["served_by"]["stage"] == "production" and base["lineage"]["adapter"] is None
    assert base["lineage"]["release"]["adapter"] is None
    forced = [a for a in base["approvals"] if a["kind"] == "release"]
    assert forced[0]["forced"] and forced[0]["reason"] == "first release: base model"
    shadow = _traced(invoke_llmops, h, h["shadow"])
    assert shadow["request"]["shadow_of"] == h["production"]
    assert shadow["lineage"]["release"]["adapter"] == h["adapter"]

    # both stages point at the release: the answer's own target names the stage that served it
    late = _traced(invoke_llmops, h, h["late_canary"])
    assert late["served_by"]["stage"] == "canary"

    tree = invoke_llmops("trace", h["canary"], cwd=h["root"], env=h["env"])
    assert tree.returncode == 0, tree.stderr
    for shown in (h["adapter"], h["prompt"], "release-manager", "llmops data pull", canary["digest"]):
        assert shown in tree.stdout


def test_unknown_pruned_and_broken_chains_exit_1(history: dict[str, Any], invoke_llmops: Cli) -> None:
    h = history
    unknown = _trace(invoke_llmops, h, new_request_id())
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert "not found in 1 log file(s)" in unknown.stderr and "gateway-requests.jsonl" in unknown.stderr

    old = new_request_id(now=time.time() - 200 * 86400)
    registry: Registry = h["registry"]
    registry.audit.append(AuditRecord(
        kind="retention", object="request-log", alias="", from_version=None, to_version=None, actor="ops-bot",
        reason="older than 183 days", outcome="pruned",
        detail=json.dumps({"cutoff": time.time() - 183 * 86400, "removed": 10, "files": []}),
    ))  # fmt: skip
    pruned = _trace(invoke_llmops, h, old)
    assert pruned.returncode == 1
    assert "pruned" in pruned.stderr and "ops-bot" in pruned.stderr

    # a deleted adapter version is a gap: shown, and --strict exits 1
    from mlflow import MlflowClient

    name, version = h["adapter"].split("/")
    MlflowClient(tracking_uri=h["env"]["MLFLOW_TRACKING_URI"]).delete_model_version(name, version)
    broken = _trace(invoke_llmops, h, h["canary"])
    assert broken.returncode == 0
    assert any("version not in the registry" in g for g in json.loads(broken.stdout)["gaps"])
    strict = _trace(invoke_llmops, h, h["canary"], "--strict")
    assert strict.returncode == 1 and "--strict" in strict.stderr
