"""``llmops report ROUTE -o DIR`` against a real MLflow server: a release built in the registry (prompt version,
adapter version with lineage, stored training data, a passing eval record, the production pointer), documented;
every metric in the files equals its eval record's; no release at the stage: exit 1, nothing written."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from llmops.config.workspace import load_workspace
from llmops.evals.files import load_suite
from llmops.registry import connect, tags
from llmops.registry.audit import AuditRecord
from llmops.release import Release

pytestmark = pytest.mark.integration

Cli = Callable[..., subprocess.CompletedProcess[str]]
REPO = Path(__file__).resolve().parents[2]
METRICS = {"exact_match": 0.1 + 0.2 + 0.4, "bleu_like": 1 / 3}  # exact floats: 0.7000000000000001, 0.333…


def _copy_serving(root: Path, route: str) -> None:
    """The example gateway and monitor files, with the example route renamed to ``route``."""
    (root / "serving").mkdir()
    for name in ("gateway.yaml", "monitor.yaml", "rollout.yaml"):
        text = (REPO / "serving" / name).read_text().replace("support-triage:", f"{route}:")
        (root / "serving" / name).write_text(text)


@pytest.fixture
def released(
    mlflow_server, git_workspace, tmp_path: Path, invoke_llmops: Cli, fake_adapter: Callable[..., Path],
    new_run: Callable[..., str], write_required_suite: Callable[[Path, str], Path],
) -> dict[str, object]:  # fmt: skip
    env = {"MLFLOW_TRACKING_URI": mlflow_server.url, "LLMOPS_ACTOR": "ci-bot"}
    root = git_workspace.root
    assert invoke_llmops("prompts", "push", cwd=root, env=env).returncode == 0
    route = f"triage-{uuid.uuid4().hex[:6]}"
    _copy_serving(root, route)
    suite_path = write_required_suite(root, route)
    ws = load_workspace(root, env=env)
    registry = connect(ws)

    train = tmp_path / "train.jsonl"
    train.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x"}]}\n')
    fingerprint = hashlib.sha256(train.read_bytes()).hexdigest()
    registry.datasets.store([train], fingerprint=fingerprint, name="train", kind="training", rows=1,
                            source="finetune/data/train.jsonl")  # fmt: skip
    lineage = {tags.BASE_MODEL: "reference", tags.BASE_MODEL_SHA256: "b" * 64, tags.DATASET_FINGERPRINT: fingerprint,
               tags.GIT_COMMIT: "0123abcd", tags.JOB_SPEC_SHA256: "e" * 64}  # fmt: skip
    adapter = registry.adapters.register(route, fake_adapter(tmp_path / "adapter"), new_run(registry), lineage)
    prompt = git_workspace.name("support-triage")
    latest = registry.prompts.latest(prompt)
    assert latest is not None
    release = registry.resolve(Release.of("reference", adapter.ref, latest.ref)).release
    suite, _, case_bytes = load_suite(suite_path)
    run_id = registry.evals.log(suite=suite.name, suite_hash=suite.suite_hash(case_bytes), release=release,
                                verdict="pass", metrics=METRICS)  # fmt: skip
    recorded = registry.pointers.record(route, release, [run_id])
    registry.pointers.set_stage(route, "production", recorded.version)
    registry.audit.append(AuditRecord(kind="release", object=route, alias="production", from_version=None,
                                      to_version=str(recorded.version), actor="ci-bot", reason="first | release",
                                      eval_records=(run_id,), detail=release.label()))  # fmt: skip
    return {"env": env, "root": root, "route": route, "run_id": run_id, "fingerprint": fingerprint,
            "adapter": adapter, "release": release}  # fmt: skip


def test_report_writes_documents_whose_metrics_equal_the_eval_record(
    released: dict[str, object], invoke_llmops: Cli, tmp_path: Path
) -> None:
    route, root, env = str(released["route"]), Path(str(released["root"])), released["env"]
    out = tmp_path / "docs"
    result = invoke_llmops("report", route, "-o", str(out), cwd=root, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "technical-documentation.html",
                                                      "technical-documentation.json", "technical-documentation.md"]  # fmt: skip
    recorded = connect(load_workspace(root, env=env)).evals.get(str(released["run_id"])).metrics  # type: ignore[arg-type]
    assert recorded == METRICS

    doc = json.loads((out / "technical-documentation.json").read_text())
    found: dict[str, float] = {}

    def walk(sections: list[dict[str, object]]) -> None:
        for s in sections:
            for t in s["tables"]:  # type: ignore[attr-defined]
                for row in t["rows"]:
                    for col in ("value", "recorded value"):
                        if "metric" in row and col in row:
                            assert row[col] == recorded[row["metric"]], (s["id"], row)
                            found[row["metric"]] = row[col]
            walk(s["sections"])  # type: ignore[arg-type]

    walk(doc["sections"])
    assert found == recorded
    assert doc["subject"]["release key"] == released["release"].key  # type: ignore[attr-defined]

    card = (out / "README.md").read_text()
    meta = yaml.safe_load(re.match(r"---\n(.*?)\n---\n", card, re.S).group(1))  # type: ignore[union-attr]
    assert meta["base_model"] == "reference"
    assert meta["datasets"] == [f"llmops-dataset:{str(released['fingerprint'])[:12]}"]
    [result_] = meta["model-index"][0]["results"]
    assert {m["type"]: m["value"] for m in result_["metrics"]} == recorded
    for name in ("README.md", "technical-documentation.md", "technical-documentation.html"):
        text = (out / name).read_text()
        assert all(repr(v) in text for v in recorded.values()), name
    # lineage from the registry: adapter sha256, the stored training data and how to restore it, the audit trail
    annex = (out / "technical-documentation.md").read_text()
    adapter = released["adapter"]
    assert adapter.sha256 in annex  # type: ignore[attr-defined]
    assert f"llmops data pull {released['fingerprint']}" in card
    assert "first \\| release" in annex
    assert "| support-app | user | $LLMOPS_GATEWAY_KEY |" in annex  # API keys by name, never a value
    assert "## 9. Post-market monitoring plan (Article 72)" in annex and "input-drift" in annex

    as_json = invoke_llmops("report", route, "-o", str(tmp_path / "j"), "--format", "json", "--json", cwd=root, env=env)
    assert as_json.returncode == 0, as_json.stderr
    summary = json.loads(as_json.stdout)
    assert summary["metrics"] == len(METRICS) and summary["pointer_version"] >= 1
    assert sorted(Path(p).name for p in summary["files"]) == ["README.md", "technical-documentation.json"]


def test_no_release_at_the_stage_exits_1_and_writes_nothing(
    released: dict[str, object], invoke_llmops: Cli, tmp_path: Path
) -> None:
    route, root = str(released["route"]), Path(str(released["root"]))
    out = tmp_path / "none"
    result = invoke_llmops("report", route, "--stage", "canary", "-o", str(out), cwd=root, env=released["env"])
    assert result.returncode == 1
    assert f"route {route} has no release at stage canary" in result.stderr
    assert not out.exists()
