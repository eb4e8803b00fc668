"""`llmops eval run` against a real vLLM engine and MLflow server: records, reports, cache, gates, bad input."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from llmops.config.workspace import load_workspace
from llmops.prompts.spec import load_spec
from llmops.registry import connect

pytestmark = pytest.mark.integration

Cli = Callable[..., subprocess.CompletedProcess[str]]

CASES = [
    ("Ana", "billing", "I was charged twice for order 1234, please fix it"),
    ("Liam", "shipping", "My parcel for order 555 has not arrived after 12 days"),
    ("Mei", "account_access", "I cannot log in to my account since yesterday"),
    ("Omar", "refund", "I want a refund for the broken kettle"),
]


@pytest.fixture
def eval_ws(
    mlflow_server,
    git_workspace,
    tiny_model_path: Path,
    tmp_path: Path,
    invoke_llmops: Cli,
    make_random_lora: Callable[..., Path],
) -> dict[str, object]:
    env = {"MLFLOW_TRACKING_URI": mlflow_server.url}
    root = git_workspace.root
    assert invoke_llmops("prompts", "push", cwd=root, env=env).returncode == 0
    ws = load_workspace(root, env=env)
    registry = connect(ws)
    adapter = f"triage-{uuid.uuid4().hex[:6]}"
    run_id = registry.runs.start("llmops-test-adapters", adapter, {}).run_id
    registry.adapters.register(adapter, make_random_lora(tiny_model_path, tmp_path / "lora", seed=3), run_id, {})
    (root / "evals").mkdir()
    lines = [
        json.dumps({"id": f"c{i}", "variables": {"message": f"Hi, I am {name}. {text}"},
                    "reference": json.dumps({"intent": intent, "priority": "medium"}), "attributes": {"customer_name": name}})
        for i, (name, intent, text) in enumerate(CASES)
    ]  # fmt: skip
    (root / "evals" / "cases.jsonl").write_text("\n".join(lines) + "\n")
    return {"env": env, "root": root, "adapter": adapter, "prompt": git_workspace.name("support-triage")}


def suite_yaml(prompt: str, adapter: str, gates: str) -> str:
    return f"""\
name: triage-check
cases: cases.jsonl
target:
  release: {{adapter: {adapter}/1, prompt: {prompt}/1, params: {{max_tokens: 8}}}}
concurrency: 4
metrics: [exact_match, json_valid, latency]
bias:
  attribute: customer_name
  groups: {{a: [Sofia, Kwame], b: [Ingrid, Hiroshi]}}
gates:
{gates}
"""


def test_eval_run_records_reports_caches_and_gates(
    eval_ws: dict[str, object], vllm_engine, tmp_path: Path, invoke_llmops: Cli
) -> None:
    env, root, adapter, prompt = (eval_ws[k] for k in ("env", "root", "adapter", "prompt"))
    env = {**env, **vllm_engine.env}  # type: ignore[dict-item]  # the engine's key, as LLMOPS_ENGINE_KEY
    suite = root / "evals" / "check.yaml"  # type: ignore[operator]
    suite.write_text(
        suite_yaml(prompt, adapter, "  - {metric: json_valid, min: 0.0}\n  - {metric: latency_p95_ms, max: 60000}")
    )
    out = tmp_path / "reports"
    first = invoke_llmops("eval", "run", str(suite), "--endpoint", vllm_engine.url, "-o", str(out), cwd=root, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "verdict: PASS" in first.stdout
    for name in ("report.json", "report.html", "junit.xml"):
        assert (out / name).is_file()
    report = json.loads((out / "report.json").read_text())
    assert report["candidate"]["release"]["adapter"] == f"{adapter}/1"
    assert len(report["candidate"]["release"]["key"]) == 64
    assert report["candidate"]["bias"]["variants"] == len(CASES) * 4
    assert 0.0 <= report["candidate"]["metrics"]["bias_change_rate"] <= 1.0
    assert report["candidate"]["metrics"]["latency_p95_ms"] > 0
    record_id = re.search(r"record: (\w+)", first.stdout).group(1)  # type: ignore[union-attr]

    shown = invoke_llmops("eval", "show", record_id, cwd=root, env=env)
    assert shown.returncode == 0 and "PASS" in shown.stdout and "latency_p95_ms" in shown.stdout

    again = invoke_llmops("eval", "run", str(suite), "--endpoint", vllm_engine.url, "-o", str(out), cwd=root, env=env)
    assert f"cached outputs: {len(CASES) * 5}" in again.stdout

    suite.write_text(suite_yaml(prompt, adapter, "  - {metric: exact_match, min: 0.99}"))
    failed = invoke_llmops("eval", "run", str(suite), "--endpoint", vllm_engine.url, "-o", str(out), cwd=root, env=env)
    assert failed.returncode == 1
    assert "FAIL  exact_match" in failed.stdout and "verdict: FAIL" in failed.stdout
    assert 'failures="1"' in (out / "junit.xml").read_text()


def test_errors_before_any_request(eval_ws: dict[str, object], invoke_llmops: Cli) -> None:
    env, root, adapter, prompt = (eval_ws[k] for k in ("env", "root", "adapter", "prompt"))
    suite = root / "evals" / "rel.yaml"  # type: ignore[operator]
    dead = "http://127.0.0.1:9"  # nothing listens: any request would fail differently
    suite.write_text(suite_yaml(prompt, adapter, "  - {metric: exact_match, max_drop_vs_production: 0.01}"))
    no_prod = invoke_llmops("eval", "run", str(suite), "--endpoint", dead, cwd=root, env=env)
    assert no_prod.returncode == 2 and "no production release" in no_prod.stderr

    # a route's engine comes from serving/gateway.yaml: when it does not answer, the error says where it came from
    (root / "serving").mkdir(exist_ok=True)  # type: ignore[operator]
    (root / "serving" / "gateway.yaml").write_text(  # type: ignore[operator]
        f"version: 1\nengines:\n  local: {{url: '{dead}'}}\nroutes:\n  triage:\n    targets:\n"
        f"      - {{name: stable, weight: 1, prompt: {prompt}/1}}\n"
    )
    by_route = root / "evals" / "route.yaml"  # type: ignore[operator]
    by_route.write_text(suite_yaml(prompt, adapter, "  - {metric: json_valid, min: 0.0}").replace(
        f"  release: {{adapter: {adapter}/1, prompt: {prompt}/1, params: {{max_tokens: 8}}}}", "  route: triage"
    ))  # fmt: skip
    down = invoke_llmops("eval", "run", str(by_route), "--candidate", f"{adapter}/1", cwd=root, env=env)
    assert down.returncode == 2, down.stdout + down.stderr
    assert "serving/gateway.yaml" in down.stderr and "--endpoint" in down.stderr, down.stderr

    (root / "evals" / "cases.jsonl").write_text('{"variables": {"message": "x"}}\n{oops\n')  # type: ignore[operator]
    bad = invoke_llmops("eval", "run", str(suite), "--endpoint", dead, cwd=root, env=env)
    assert bad.returncode == 2 and "cases.jsonl:2" in bad.stderr


@pytest.fixture
def fake_engine_url(tmp_path: Path, start_fake_engine: Callable[..., tuple[Any, str]]) -> Iterator[str]:
    """``bench/fake_upstream.py``: answers every chat request instantly with the same text."""
    proc, url = start_fake_engine(tmp_path)
    try:
        yield url
    finally:
        proc.stop()


def test_eval_run_prompt_file_scores_a_draft_and_writes_nothing(
    mlflow_server, git_workspace, fake_engine_url: str, tmp_path: Path, invoke_llmops: Cli
) -> None:
    env = {"MLFLOW_TRACKING_URI": mlflow_server.url}
    root, name = git_workspace.root, git_workspace.name("support-triage")
    assert invoke_llmops("prompts", "push", cwd=root, env=env).returncode == 0
    registry = connect(load_workspace(root, env=env))
    (root / "evals").mkdir()
    (root / "evals" / "cases.jsonl").write_text(
        "".join(json.dumps({"id": f"{name}-{i}", "variables": {"message": text}, "reference": intent}) + "\n"
                for i, (_, intent, text) in enumerate(CASES))
    )  # fmt: skip
    suite = root / "evals" / "draft.yaml"

    def write_suite(gates: str) -> None:
        suite.write_text(
            f"name: draft-check\ncases: cases.jsonl\ntarget:\n  release: {{prompt: {name}/1, params: {{max_tokens: 8}}}}\n"
            f"metrics: [exact_match, json_valid]\ngates:\n{gates}\n"
        )

    # the branch edits the prompt (and adds one never pushed): neither becomes a registry version
    prompt_file = git_workspace.prompt_path("support-triage")
    prompt_file.write_text(prompt_file.read_text().replace("You triage support tickets.", "Triage this ticket."))
    new_file = root / "prompts" / f"{name}-new.yaml"
    new_file.write_text(prompt_file.read_text().replace(f"name: {name}\n", f"name: {name}-new\n"))
    records_before, datasets_before = len(registry.evals.find()), len(registry.datasets.list())
    shown = f"prompts/{prompt_file.name}"
    digest = load_spec(prompt_file).content_hash()

    write_suite("  - {metric: json_valid, min: 0.0}")
    out = tmp_path / "reports"
    args = ("eval", "run", str(suite), "--endpoint", fake_engine_url, "-o", str(out))
    passed = invoke_llmops(*args, "--prompt-file", shown, cwd=root, env=env)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert f"draft prompt {shown} (content sha256 {digest}): not registered, no eval record" in passed.stdout
    assert "verdict: PASS" in passed.stdout and "record:" not in passed.stdout
    for report in ("report.json", "report.html", "junit.xml"):
        assert (out / report).is_file()
    candidate = json.loads((out / "report.json").read_text())["candidate"]
    assert candidate["release"]["draft_prompt"] == {"path": shown, "content_sha256": digest}
    assert len(candidate["cases"]) == len(CASES)

    write_suite("  - {metric: exact_match, min: 0.99}")  # the fake engine never answers the reference
    new = invoke_llmops(*args, "--prompt-file", str(new_file), cwd=root, env=env)
    assert new.returncode == 1, new.stdout + new.stderr
    assert "FAIL  exact_match" in new.stdout and "verdict: FAIL" in new.stdout
    assert 'failures="1"' in (out / "junit.xml").read_text()

    assert [v.version for v in registry.prompts.versions(name)] == [1]
    assert registry.prompts.latest(f"{name}-new") is None
    assert len(registry.evals.find()) == records_before
    assert len(registry.datasets.list()) == datasets_before  # not even the (unique) case file is stored

    # the draft is what renders: a variable the cases lack fails before any request
    prompt_file.write_text(prompt_file.read_text().replace("variables:\n", "variables:\n  tone: {type: string}\n"))
    bad = invoke_llmops(*args, "--prompt-file", shown, cwd=root, env=env)
    assert bad.returncode == 2 and "missing required variable 'tone'" in bad.stderr, bad.stdout + bad.stderr

    both = invoke_llmops(*args, "--prompt-file", shown, "--prompt", f"{name}/1", cwd=root, env=env)
    assert both.returncode == 2 and "not both" in both.stderr
