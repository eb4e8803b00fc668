"""Adapter versions in the real MLflow registry: register, alias, fetch with sha256 verification."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow import MlflowClient

from llmops.config.workspace import load_workspace
from llmops.errors import IntegrityError, NotFoundError, RegistryError
from llmops.registry import Registry, connect, tags

pytestmark = pytest.mark.integration


@pytest.fixture
def reg(mlflow_server, tmp_path: Path) -> Registry:
    ws = load_workspace(tmp_path, env={"MLFLOW_TRACKING_URI": mlflow_server.url})
    return connect(ws)


def test_register_fetch_verify_alias(
    reg: Registry, tmp_path: Path, fake_adapter: Callable[..., Path], new_run: Callable[..., str]
) -> None:
    registry = reg.adapters
    name = f"triage-{uuid.uuid4().hex[:6]}"
    lineage = {k: f"value-of-{k}" for k in tags.LINEAGE}
    info = registry.register(name, fake_adapter(tmp_path / "a"), new_run(reg), lineage)
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


def test_forbidden_files_are_refused_before_anything_is_registered(
    reg: Registry, tmp_path: Path, fake_adapter: Callable[..., Path], new_run: Callable[..., str]
) -> None:
    registry = reg.adapters
    folder = fake_adapter(tmp_path / "b")
    (folder / "training_args.bin").write_bytes(b"\x80\x04pickle")
    name = f"evil-{uuid.uuid4().hex[:6]}"
    with pytest.raises(IntegrityError, match="training_args.bin"):
        registry.register(name, folder, new_run(reg), {})
    assert name not in registry.names()


def test_adapter_name_held_by_a_prompt_or_model_is_refused(
    reg: Registry, tmp_path: Path, fake_adapter: Callable[..., Path], new_run: Callable[..., str]
) -> None:
    registry = reg.adapters
    client = MlflowClient(tracking_uri=reg.uri, registry_uri=reg.uri)
    prompt_name = f"clash-prompt-{uuid.uuid4().hex[:6]}"
    client.register_prompt(name=prompt_name, template="Hello {{name}}")
    model_name = f"clash-model-{uuid.uuid4().hex[:6]}"
    client.create_registered_model(model_name, tags={"llmops.kind": "base-model"})
    for name, kind in ((prompt_name, "prompt"), (model_name, "base-model")):
        with pytest.raises(RegistryError, match=f"already holds a {kind} of that name"):
            registry.register(name, fake_adapter(tmp_path / name), new_run(reg), {})
    assert client.search_model_versions(f"name = '{model_name}'") == []
