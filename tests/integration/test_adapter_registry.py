"""Adapter versions in the real MLflow registry: register, alias, fetch with sha256 verification."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from llmops.adapters.registry import LINEAGE_TAGS, AdapterRegistry
from llmops.config.workspace import load_workspace
from llmops.errors import IntegrityError, NotFoundError, RegistryError
from llmops.registry.tracking import connect
from tests.conftest import MlflowServer

pytestmark = pytest.mark.integration


def fake_adapter(folder: Path, seed: int = 0) -> Path:
    folder.mkdir(parents=True)
    torch.manual_seed(seed)
    save_file(
        {"base_model.model.layers.0.q_proj.lora_A.weight": torch.randn(4, 8)}, folder / "adapter_model.safetensors"
    )
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
    return folder


@pytest.fixture
def registry(mlflow_server: MlflowServer, tmp_path: Path) -> AdapterRegistry:
    ws = load_workspace(tmp_path, env={"MLFLOW_TRACKING_URI": mlflow_server.url})
    return AdapterRegistry(connect(ws), ws)


def new_run(registry: AdapterRegistry) -> str:
    client = registry._client
    exp = client.get_experiment_by_name("Default")
    return client.create_run(exp.experiment_id if exp else "0").info.run_id


def test_register_fetch_verify_alias(registry: AdapterRegistry, tmp_path: Path) -> None:
    name = f"triage-{uuid.uuid4().hex[:6]}"
    lineage = {k: f"value-of-{k}" for k in LINEAGE_TAGS}
    info = registry.register(name, fake_adapter(tmp_path / "a"), new_run(registry), lineage)
    assert info.version == 1 and len(info.sha256) == 64
    assert info.tags["llmops.dataset_fingerprint"] == "value-of-llmops.dataset_fingerprint"
    assert name in registry.names()

    local = registry.fetch(f"{name}/1", cache_dir=tmp_path / "cache")
    assert sorted(p.name for p in local.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "llmops-adapter.json",
    ]
    assert registry.fetch(f"{name}/1", cache_dir=tmp_path / "cache") == local  # cached

    # a tampered cache entry is detected and replaced by a verified copy
    (local / "adapter_config.json").write_text("{}")
    again = registry.fetch(f"{name}/1", cache_dir=tmp_path / "cache")
    assert json.loads((again / "adapter_config.json").read_text())["r"] == 4

    assert registry.alias_version(name, "production") is None
    registry.set_alias(name, "production", 1)
    assert registry.get(f"{name}@production").version == 1
    assert [v.aliases for v in registry.versions(name)] == [("production",)]  # search omits them; we fill them
    with pytest.raises(NotFoundError):
        registry.get(f"{name}/7")


def test_forbidden_files_are_refused_before_anything_is_registered(registry: AdapterRegistry, tmp_path: Path) -> None:
    folder = fake_adapter(tmp_path / "b")
    (folder / "training_args.bin").write_bytes(b"\x80\x04pickle")
    name = f"evil-{uuid.uuid4().hex[:6]}"
    with pytest.raises(IntegrityError, match="training_args.bin"):
        registry.register(name, folder, new_run(registry), {})
    assert name not in registry.names()


def test_adapter_name_held_by_a_prompt_or_model_is_refused(registry: AdapterRegistry, tmp_path: Path) -> None:
    client = registry._client
    prompt_name = f"clash-prompt-{uuid.uuid4().hex[:6]}"
    client.register_prompt(name=prompt_name, template="Hello {{name}}")
    model_name = f"clash-model-{uuid.uuid4().hex[:6]}"
    client.create_registered_model(model_name, tags={"llmops.kind": "base-model"})
    for name, kind in ((prompt_name, "prompt"), (model_name, "base-model")):
        with pytest.raises(RegistryError, match=f"already holds a {kind} of that name"):
            registry.register(name, fake_adapter(tmp_path / name), new_run(registry), {})
    assert client.search_model_versions(f"name = '{model_name}'") == []
