"""`llmops finetune run` against a real MLflow server: lineage, artifacts, reload, and refused inputs."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlflow import MlflowClient

from llmops.errors import ConfigError, ModelError, NotFoundError, ValidationFailed
from llmops.events import SILENT
from llmops.finetune.dataset import build_examples
from llmops.finetune.lineage import EXPERIMENT
from llmops.finetune.recipe import eval_loss
from llmops.finetune.rows import PromptRow, read_rows
from llmops.finetune.runner import RunOptions, run_job
from llmops.models.reference import load_reference_model
from llmops.prompts.render import render_messages
from llmops.registry import connect, tags

pytestmark = pytest.mark.integration

FORBIDDEN = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
STEPS = 4
Cli = Callable[..., subprocess.CompletedProcess[str]]


def mlflow_client(ft: Any) -> MlflowClient:
    """A raw MLflow client, to check what the run recorded (params, metrics, artifacts)."""
    return MlflowClient(tracking_uri=ft.ws.tracking_uri, registry_uri=ft.ws.tracking_uri)


@pytest.fixture(scope="module")
def trained(ft, invoke_llmops: Cli) -> dict[str, object]:
    """The example job, trained once for the tests of this module (in-process: same code as the CLI)."""
    ft.write_job("support-triage")
    result = invoke_llmops(
        "finetune", "run", "finetune/support-triage.yaml", "--max-steps", str(STEPS), cwd=ft.root, env=ft.env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return {"output": result.stdout, "name": ft.adapter("support-triage")}


def _artifacts(client, run_id: str, path: str = "") -> list[str]:  # type: ignore[no-untyped-def]
    out = []
    for item in client.list_artifacts(run_id, path or None):
        out += _artifacts(client, run_id, item.path) if item.is_dir else [item.path]
    return out


def test_example_job_registers_version_1_with_full_lineage(
    ft, trained: dict[str, object], git: Callable[..., str], invoke_llmops: Cli, tmp_path: Path
) -> None:
    name = str(trained["name"])
    assert f"registered adapter {name}/1" in str(trained["output"]), trained["output"]
    client = mlflow_client(ft)
    info = connect(ft.ws).adapters.get(f"{name}/1")
    assert info.aliases == ()  # training sets no alias
    for tag in tags.LINEAGE:
        if tag != "llmops.init_adapter":
            assert info.tags.get(tag), f"lineage tag {tag} is empty"
    assert not info.tags.get("llmops.init_adapter")  # a fresh LoRA continues nothing
    job_path = ft.jobs["support-triage"]
    assert info.tags["llmops.base_model"] == str(ft.model_path)
    assert info.tags["llmops.base_model_sha256"] == load_reference_model(ft.model_path).sha256
    train_file = ft.root / "finetune" / "data" / "support-triage" / "train.jsonl"
    assert info.tags["llmops.dataset_fingerprint"] == read_rows(train_file).fingerprint
    # the registry keeps the training file itself: `data pull` of the adapter's fingerprint restores it byte for byte
    pulled = invoke_llmops("data", "pull", info.tags["llmops.dataset_fingerprint"], "-o", str(tmp_path / "pulled"),
                           cwd=ft.root, env=ft.env)  # fmt: skip
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert (tmp_path / "pulled" / "train.jsonl").read_bytes() == train_file.read_bytes()
    assert info.tags["llmops.prompt_version"] == ft.prompt_ref
    assert info.tags["llmops.git_commit"] == git(ft.root, "log", "-1", "--format=%H", "--", "finetune")
    assert info.tags["llmops.job_spec_sha256"] == hashlib.sha256(job_path.read_bytes()).hexdigest()
    assert info.tags["llmops.run_id"] == info.run_id

    run = client.get_run(str(info.run_id))
    assert run.info.status == "FINISHED"
    assert run.data.params["lora.r"] == "16" and run.data.params["effective_max_steps"] == str(STEPS)
    assert run.data.tags["llmops.job_spec_sha256"] == info.tags["llmops.job_spec_sha256"]
    for metric in ("loss", "learning_rate", "tokens_per_s"):
        history = client.get_metric_history(run.info.run_id, metric)
        assert sorted(m.step for m in history) == list(range(1, STEPS + 1)), metric
    assert "final_eval_loss" in run.data.metrics
    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    train_input = inputs["support-triage-train"]
    assert train_input.dataset.digest == info.tags["llmops.dataset_fingerprint"][:32]
    assert {t.key: t.value for t in train_input.tags}["mlflow.data.context"] == "training"
    assert "support-triage-eval" in inputs

    artifacts = _artifacts(client, run.info.run_id)
    assert "job/support-triage.yaml" in artifacts and "system.json" in artifacts and "data-report.json" in artifacts
    assert not [a for a in artifacts if a.endswith(FORBIDDEN)], artifacts
    adapter_files = sorted(a.removeprefix("adapter/") for a in artifacts if a.startswith("adapter/"))
    assert adapter_files == ["adapter_config.json", "adapter_model.safetensors", "llmops-adapter.json"]
    # the registered copy verifies against its sha256 and names standard target modules (vLLM-loadable)
    local = connect(ft.ws).adapters.fetch(info, cache_dir=ft.root / ".cache")
    import json

    config = json.loads((local / "adapter_config.json").read_text())
    assert set(config["target_modules"]) == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }
    assert config["r"] == 16 and config["peft_type"] == "LORA"


def test_reloaded_adapter_reproduces_the_final_eval_loss(ft, trained: dict[str, object]) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    client = mlflow_client(ft)
    registry = connect(ft.ws).adapters
    info = registry.get(f"{trained['name']}/1")
    logged = client.get_run(str(info.run_id)).data.metrics["final_eval_loss"]
    tokenizer = AutoTokenizer.from_pretrained(ft.model_path)
    prompt = connect(ft.ws).prompts.get(ft.prompt_ref)
    rows = read_rows(ft.root / "finetune" / "data" / "support-triage" / "eval.jsonl")
    examples = build_examples(rows, tokenizer, prompt.spec, prompt.version)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(ft.model_path), str(registry.fetch(info)))
    assert abs(eval_loss(model, examples, tokenizer.pad_token_id) - logged) < 1e-4


def test_registered_adapter_loads_into_vllm_and_changes_the_output(ft, trained: dict[str, object], vllm_engine) -> None:
    """The registered version, fetched and sha256-verified, loads through vLLM's runtime LoRA endpoint."""
    registry = connect(ft.ws).adapters
    info = registry.get(f"{trained['name']}/1")
    folder = registry.fetch(info, cache_dir=ft.root / ".adapter-cache")
    loaded = httpx.post(
        f"{vllm_engine.url}/v1/load_lora_adapter",
        json={"lora_name": info.lora_name, "lora_path": str(folder)},
        headers=vllm_engine.headers,
        timeout=120,
    )
    assert loaded.status_code == 200, loaded.text
    try:
        prompt = connect(ft.ws).prompts.get(ft.prompt_ref)
        row = read_rows(ft.root / "finetune" / "data" / "support-triage" / "eval.jsonl").rows[0].data
        assert isinstance(row, PromptRow)
        messages = render_messages(prompt.spec, row.variables)
        body = {"messages": messages, "max_tokens": 24, "temperature": 0, "logprobs": True, "top_logprobs": 1}

        def answer(model: str) -> tuple[str, list[float]]:
            url = f"{vllm_engine.base_url}/chat/completions"
            r = httpx.post(url, json={**body, "model": model}, headers=vllm_engine.headers, timeout=120)
            assert r.status_code == 200, r.text
            choice = r.json()["choices"][0]
            return choice["message"]["content"], [t["logprob"] for t in choice["logprobs"]["content"]]

        base_text, base_lp = answer(vllm_engine.model_name)
        tuned_text, tuned_lp = answer(info.lora_name)
        # a few training steps move the distribution; the greedy text may or may not change yet
        assert tuned_text != base_text or max(abs(a - b) for a, b in zip(base_lp, tuned_lp, strict=False)) > 1e-3
    finally:
        unload = {"lora_name": info.lora_name}
        httpx.post(f"{vllm_engine.url}/v1/unload_lora_adapter", json=unload, headers=vllm_engine.headers, timeout=60)


def test_adapters_cli_lists_and_shows_lineage(ft, trained: dict[str, object], invoke_llmops: Cli) -> None:
    name = str(trained["name"])
    listed = invoke_llmops("adapters", "list", name, cwd=ft.root, env=ft.env)
    assert listed.returncode == 0, listed.stdout
    assert f"{name}/1" in listed.stdout and ft.prompt_ref in listed.stdout
    shown = invoke_llmops("adapters", "show", f"{name}/1", cwd=ft.root, env=ft.env)
    assert shown.returncode == 0, shown.stdout
    for key in ("dataset_fingerprint", "base_model_sha256", "job_spec_sha256", "git_commit", "run final_eval_loss"):
        assert key in shown.stdout
    missing = invoke_llmops("adapters", "show", f"{name}/9", cwd=ft.root, env=ft.env)
    assert missing.returncode == 2 and "not found" in missing.stderr
    # the held-out split of the job, scored with the adapter (its training prompt version, from lineage)
    scored = invoke_llmops(
        "finetune", "score", "finetune/support-triage.yaml", "--adapter", f"{name}/1", "--limit", "4",
        cwd=ft.root, env=ft.env,
    )  # fmt: skip
    assert scored.returncode == 0, scored.stdout + scored.stderr
    assert f"for adapter {name}/1 on {ft.model_path}" in scored.stdout and "/4)" in scored.stdout
    assert "field accuracy: intent " in scored.stdout and ", priority " in scored.stdout


def _runs_of(ft, job: str) -> int:
    client = mlflow_client(ft)
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is None:
        return 0
    return len(client.search_runs([exp.experiment_id], f"tags.`llmops.job` = '{job}'"))


def test_bad_inputs_fail_before_any_work(ft) -> None:
    quiet = SILENT
    ft.write_data("finetune/data/bad/train.jsonl", ['{"variables": {"message": "hi"}, "target": "x"}', "", "{oops"])
    bad_data = ft.write_job("bad-data", train="finetune/data/bad/train.jsonl")
    with pytest.raises(ValidationFailed, match=r"finetune/data/bad/train.jsonl:3: malformed JSON"):
        run_job(ft.ws, bad_data, RunOptions(), quiet)

    no_prompt = ft.write_job("no-prompt", prompt=ft.prompt_ref.replace("/1", "/99"))
    with pytest.raises(NotFoundError, match="not found"):
        run_job(ft.ws, no_prompt, RunOptions(), quiet)

    no_model = ft.write_job("no-model", base_model=str(ft.root / "models" / "missing"))
    with pytest.raises(ModelError, match="no such folder"):
        run_job(ft.ws, no_model, RunOptions(), quiet)

    unformatted = ft.write_job("unformatted", prompt=None)
    with pytest.raises(ConfigError, match=r"\[prompt\]: the data holds prompt rows"):
        run_job(ft.ws, unformatted, RunOptions(), quiet)

    for job in ("bad-data", "no-prompt", "no-model", "unformatted"):
        assert _runs_of(ft, job) == 0, job
        assert not (ft.ws.home / "finetune" / job / "checkpoints").exists()


def test_data_warnings_are_refused_unless_allowed_then_logged(ft, invoke_llmops: Cli) -> None:
    rows = (ft.root / "finetune" / "data" / "support-triage" / "train.jsonl").read_text().splitlines()[:16]
    pii = '{"variables": {"message": "Call me on 555-123-4567 about my refund"}, "target": "{}"}'
    ft.write_data("finetune/data/warn/train.jsonl", [*rows, rows[0], pii])
    job = ft.write_job("warned", train="finetune/data/warn/train.jsonl")
    refused = invoke_llmops("finetune", "run", "finetune/warned.yaml", cwd=ft.root, env=ft.env)
    assert refused.returncode == 2
    assert "finetune/data/warn/train.jsonl:17: same row as line 1" in refused.stderr
    assert "finetune/data/warn/train.jsonl:18: possible personal data: phone" in refused.stderr
    assert "--allow-warnings" in refused.stderr
    assert _runs_of(ft, "warned") == 0

    outcome = run_job(ft.ws, job, RunOptions(allow_warnings=True, max_steps=2), SILENT)
    assert outcome.adapter is not None and outcome.adapter.version == 1
    client = mlflow_client(ft)
    run = client.get_run(str(outcome.run_id))
    assert run.data.params["data.warnings"] == "2"
    warnings = client.download_artifacts(run.info.run_id, "data-warnings.txt", str(ft.root / ".dl"))
    text = Path(warnings).read_text()
    assert "train.jsonl:17" in text and "[duplicate]" in text and "[pii]" in text


def _lora_tensors(folder: Path) -> dict[str, object]:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def test_init_adapter_continues_a_registered_version(ft, trained: dict[str, object], invoke_llmops: Cli) -> None:
    """A job with ``init_adapter`` starts from that version's weights and records it in the lineage."""
    parent_ref = f"{trained['name']}/1"
    job = ft.write_job("continued", init_adapter=parent_ref, training={"max_steps": 1, "lr": 1e-9})
    result = invoke_llmops("finetune", "run", str(job.relative_to(ft.root)), cwd=ft.root, env=ft.env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"continues adapter {parent_ref}" in result.stdout

    client = mlflow_client(ft)
    registry = connect(ft.ws).adapters
    parent = registry.get(parent_ref)
    child = registry.get(f"{ft.adapter('continued')}/1")
    assert child.tags["llmops.init_adapter"] == f"{parent_ref}@{parent.sha256}"
    assert client.get_run(str(child.run_id)).data.tags["llmops.init_adapter"] == child.tags["llmops.init_adapter"]
    # one step at lr 1e-9 leaves the parent's weights (a fresh LoRA would start with lora_B all zeros)
    import torch

    before, after = _lora_tensors(registry.fetch(parent)), _lora_tensors(registry.fetch(child))
    assert set(before) == set(after)
    b_keys = [k for k in before if "lora_B" in k]
    assert b_keys and any(float(before[k].abs().max()) > 0 for k in b_keys)  # type: ignore[attr-defined]
    for key, tensor in before.items():
        assert torch.allclose(tensor, after[key], atol=1e-6), key  # type: ignore[arg-type]
    shown = invoke_llmops("adapters", "show", f"{ft.adapter('continued')}/1", cwd=ft.root, env=ft.env)
    assert "init_adapter" in shown.stdout and parent_ref in shown.stdout


def test_init_adapter_mismatches_fail_before_any_work(ft, trained: dict[str, object]) -> None:
    quiet = SILENT
    parent_ref = f"{trained['name']}/1"
    unknown = ft.write_job("init-unknown", init_adapter=f"{trained['name']}/99")
    with pytest.raises(ConfigError, match=r"finetune/init-unknown.yaml \[init_adapter\]: .*not found"):
        run_job(ft.ws, unknown, RunOptions(), quiet)
    other_rank = ft.write_job("init-rank", init_adapter=parent_ref, lora={"r": 8, "alpha": 16})
    with pytest.raises(ConfigError, match=r"\[lora.r\]: lora.r is 8 but init_adapter .* has 16"):
        run_job(ft.ws, other_rank, RunOptions(), quiet)
    fewer = ft.write_job("init-modules", init_adapter=parent_ref, lora={"target_modules": ["q_proj", "v_proj"]})
    with pytest.raises(ConfigError, match=r"\[lora.target_modules\]"):
        run_job(ft.ws, fewer, RunOptions(), quiet)
    for job in ("init-unknown", "init-rank", "init-modules"):
        assert _runs_of(ft, job) == 0, job
