"""`--json` of the list, show and status commands against a real MLflow server, parsed as a script would."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from llmops.config.workspace import load_workspace
from llmops.registry import connect
from llmops.release import Release

pytestmark = pytest.mark.integration

Cli = Callable[..., subprocess.CompletedProcess[str]]

#: what a pipe sees: no usable COLUMNS (rich ignores an empty one, and used to assume 80 columns)
PIPED = {"COLUMNS": ""}


def _json(cli: Cli, *args: str, cwd: Path, env: dict[str, str]) -> Any:
    result = cli(*args, "--json", cwd=cwd, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def _utc(value: object) -> datetime:
    assert isinstance(value, str) and value.endswith("Z"), value
    return datetime.fromisoformat(value)


def test_prompts_and_adapters_json_and_piped_tables_are_complete(
    mlflow_server, git_workspace, git: Callable[..., str], invoke_llmops: Cli, fake_adapter: Callable[..., Path],
    tmp_path: Path,
) -> None:  # fmt: skip
    env = {"MLFLOW_TRACKING_URI": mlflow_server.url, **PIPED}
    root = git_workspace.root
    # a prompt whose name alone is most of an 80-column table row
    prompt = f"triage-with-a-name-too-long-for-a-table-cell-{git_workspace.suffix}"
    text = git_workspace.prompt_path("support-triage").read_text()
    text = text.replace(f"name: {git_workspace.name('support-triage')}\n", f"name: {prompt}\n")
    (root / "prompts" / f"{prompt}.yaml").write_text(text)
    commit = git_workspace.commit("a long prompt name")
    assert invoke_llmops("prompts", "push", cwd=root, env=env).returncode == 0
    assert (
        invoke_llmops("prompts", "promote", prompt, "--version", "1", "--reason", "x", cwd=root, env=env).returncode
        == 0
    )

    listed = {p["name"]: p for p in _json(invoke_llmops, "prompts", "list", cwd=root, env=env)}
    mine = listed[prompt]
    assert mine["latest_version"] == 1 and mine["aliases"] == {"production": 1}
    assert mine["git_commit"] == commit == git(root, "rev-parse", "HEAD")
    assert mine["path"] == f"prompts/{prompt}.yaml" and mine["uri"] == f"prompts:/{prompt}/1"
    assert len(mine["sha256"]) == 64
    _utc(mine["created"])

    shown = _json(invoke_llmops, "prompts", "show", f"{prompt}@production", cwd=root, env=env)
    assert shown["name"] == prompt and shown["version"] == 1 and shown["aliases"] == ["production"]
    assert shown["sha256"] == mine["sha256"] and shown["commit_message"] == "a long prompt name"
    assert [m["role"] for m in shown["spec"]["messages"]] == ["system", "user"]
    assert shown["spec"]["params"]["max_tokens"] == 48

    table = invoke_llmops("prompts", "list", cwd=root, env=env)
    assert prompt in table.stdout and "…" not in table.stdout, table.stdout

    adapter = f"lora-whose-name-a-table-would-cut-{uuid.uuid4().hex[:24]}"  # 58 of the 64 characters allowed
    lineage = {
        "llmops.base_model": "reference",
        "llmops.base_model_sha256": "b" * 64,
        "llmops.dataset_fingerprint": "c" * 64,
        "llmops.prompt_version": f"{prompt}/1",
        "llmops.git_commit": commit,
    }
    registry = connect(load_workspace(root, env=env))
    run = registry.runs.start("llmops-test-adapters", "adapter-under-test", {})
    run.log_metrics(1, {"final_eval_loss": 1.25})
    run.finish("FINISHED")
    registry.adapters.register(adapter, fake_adapter(tmp_path / "adapter"), run.run_id, lineage)
    registry.adapters.set_alias(adapter, "production", 1)

    versions = [v for v in _json(invoke_llmops, "adapters", "list", cwd=root, env=env) if v["name"] == adapter]
    assert len(versions) == 1
    v = versions[0]
    assert v["adapter"] == f"{adapter}/1" and v["version"] == 1 and v["aliases"] == ["production"]
    assert v["run_id"] == run.run_id and len(v["sha256"]) == 64
    assert v["engine_name"] == f"{adapter}-v1-{v['sha256'][:12]}"  # the name an engine loads it under
    assert v["lineage"]["base_model_sha256"] == "b" * 64 and v["lineage"]["dataset_fingerprint"] == "c" * 64
    assert v["lineage"]["git_commit"] == commit and v["lineage"]["prompt_version"] == f"{prompt}/1"
    assert v["lineage"]["job_spec_sha256"] is None and v["lineage"]["init_adapter"] is None
    _utc(v["created"])
    assert _json(invoke_llmops, "adapters", "list", adapter, cwd=root, env=env) == versions

    one = _json(invoke_llmops, "adapters", "show", f"{adapter}@production", cwd=root, env=env)
    assert {k: one[k] for k in v} == v
    assert one["run"] == {"status": "FINISHED", "metrics": {"final_eval_loss": 1.25}}

    table = invoke_llmops("adapters", "list", adapter, cwd=root, env=env)
    assert f"{adapter}/1" in table.stdout and "…" not in table.stdout, table.stdout

    missing = invoke_llmops("adapters", "show", f"{adapter}/9", "--json", cwd=root, env=env)
    assert missing.returncode != 0 and missing.stdout == "" and "not found" in missing.stderr


def test_eval_show_json(mlflow_server, tmp_path: Path, invoke_llmops: Cli) -> None:
    env = {"MLFLOW_TRACKING_URI": mlflow_server.url, **PIPED}
    registry = connect(load_workspace(tmp_path, env=env))
    record_id = registry.evals.log(
        suite="support-triage",
        suite_hash="d" * 64,
        release=Release.of("reference"),
        verdict="pass",
        metrics={"exact_match": 0.8125},
    )

    rec = _json(invoke_llmops, "eval", "show", record_id, cwd=tmp_path, env=env)
    assert rec["record_id"] == record_id and rec["verdict"] == "pass" and rec["suite"] == "support-triage"
    assert rec["suite_sha256"] == "d" * 64 and rec["release_key"] == Release.of("reference").key
    assert rec["release"] == {"base_model": "reference", "adapter": None, "prompt": None, "params": {}}
    assert rec["metrics"] == {"exact_match": 0.8125}
    _utc(rec["started"])

    missing = invoke_llmops("eval", "show", "0" * 32, "--json", cwd=tmp_path, env=env)
    assert missing.returncode != 0 and missing.stdout == "" and "not found" in missing.stderr


def test_audit_hides_settled_pending_records_but_not_a_crashed_move(
    mlflow_server, git_workspace, invoke_llmops: Cli, run_llmops: Cli
) -> None:
    env = {"MLFLOW_TRACKING_URI": mlflow_server.url, "LLMOPS_ACTOR": "ci-bot", **PIPED}
    root = git_workspace.root
    prompt = git_workspace.name("support-reply")
    route = f"reply-{git_workspace.suffix}"
    assert invoke_llmops("prompts", "push", cwd=root, env=env).returncode == 0
    path = git_workspace.prompt_path("support-reply")
    path.write_text(path.read_text().replace("tags:\n", "tags:\n  revision: second\n", 1))
    git_workspace.commit("second version")
    assert invoke_llmops("prompts", "push", cwd=root, env=env).returncode == 0

    force = ("--force", "--reason")  # no required suite targets this route
    first = invoke_llmops("promote", route, "--prompt", f"{prompt}/1", *force, "first", cwd=root, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    # killed after its first alias move: the write-ahead "pending" record is the only trace of the move
    crashed = run_llmops("promote", route, "--prompt", f"{prompt}/2", *force, "second", cwd=root,
                         env={**env, "LLMOPS_FAULT": "promote-after-move-1"})  # fmt: skip
    assert crashed.returncode == 70, crashed.stdout + crashed.stderr

    shown = _json(invoke_llmops, "audit", "--object", route, cwd=root, env=env)
    assert [(r["outcome"], r["from_version"], r["to_version"]) for r in shown] == [
        ("pending", "1", "2"),
        ("moved", None, "1"),
    ]
    moved = shown[1]
    assert moved["actor"] == "ci-bot" and moved["kind"] == "release" and moved["alias"] == "production"
    assert moved["reason"] == "first" and moved["forced"] is True and moved["eval_records"] == []
    assert f"{prompt}/1" in moved["detail"] and len(moved["record_id"]) == 32
    assert _utc(shown[0]["when"]) >= _utc(moved["when"])

    everything = _json(invoke_llmops, "audit", "--object", route, "--all", cwd=root, env=env)
    assert sorted(r["outcome"] for r in everything) == ["moved", "pending", "pending"]

    retried = invoke_llmops("promote", route, "--prompt", f"{prompt}/2", *force, "retry", cwd=root, env=env)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    shown = _json(invoke_llmops, "audit", "--object", route, cwd=root, env=env)
    # the crash stays on record, settled by the retry: its pointer had not moved, so it was restored
    assert [r["outcome"] for r in shown] == ["moved", "restored", "moved"]
    assert len(_json(invoke_llmops, "audit", "--object", route, "--all", cwd=root, env=env)) == 6
    assert len(_json(invoke_llmops, "audit", "--object", route, "--limit", "2", cwd=root, env=env)) == 2

    table = invoke_llmops("audit", "--object", route, cwd=root, env=env)
    assert table.stdout.count("restored") == 1 and table.stdout.count("moved") == 2, table.stdout


def test_doctor_json_is_the_only_thing_on_stdout(tmp_path: Path, run_llmops: Cli) -> None:
    result = run_llmops("doctor", "--json", cwd=tmp_path, env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:9", **PIPED})
    assert result.returncode == 1  # a check failed: the same exit code as the table's
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["registry"]["status"] == "fail" and "http://127.0.0.1:9" in checks["registry"]["detail"]
    assert {"python", "workspace", "import mlflow", "vLLM (engine)", "GPU"} <= set(checks)
    assert all(set(c) == {"name", "status", "detail"} for c in checks.values())
