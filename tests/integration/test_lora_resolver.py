"""The LoRA resolver plugin in a real vLLM engine on CPU: a replica fetches registry adapters by itself.

One engine for the module (70-90 s to start), with the resolver on (``resolve_adapters``: the environment
``llmops serve engine --resolve-adapters`` sets) and the workspace of the session's MLflow server, which
holds a random LoRA adapter: version 1 intact, version 2 the same weights whose stored safetensors were then
altered on the server. Nobody loads an adapter into the engine: it answers requests for them by name.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmops.config.workspace import load_workspace
from llmops.engine import EngineSettings, start_engine
from llmops.engine.keys import ENGINE_KEY_ENV, new_engine_key
from llmops.process import ManagedProcess, free_port
from llmops.registry import connect
from llmops.registry.adapters import AdapterVersionInfo

pytestmark = pytest.mark.integration

MESSAGES = [{"role": "user", "content": "My parcel for order 1234 has not arrived, please help."}]


@dataclass(frozen=True)
class ResolverEngine:
    settings: EngineSettings
    process: ManagedProcess
    log_path: Path
    cache_dir: Path
    intact: AdapterVersionInfo  # version 1
    tampered: AdapterVersionInfo  # version 2: its files on the registry's artifact store were altered
    other: AdapterVersionInfo  # the same weights under another name, for the gateway test

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.settings.api_key}"}

    def chat(self, model: str) -> httpx.Response:
        body = {"model": model, "messages": MESSAGES, "max_tokens": 8, "temperature": 0}
        return httpx.post(f"{self.settings.base_url}/chat/completions", json=body, headers=self.headers, timeout=120)

    def served(self) -> dict[str, Any]:
        resp = httpx.get(f"{self.settings.base_url}/models", headers=self.headers, timeout=30)
        resp.raise_for_status()
        return {m["id"]: m for m in resp.json()["data"]}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _stored_file(server_root: Path, run_id: str, name: str) -> Path:
    """The file ``name`` of a run's ``adapter/`` artifacts in the MLflow server's artifact store."""
    found = [p for p in server_root.rglob(name) if run_id in p.parts and "adapter" in p.parts]
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="module")
def engine(
    mlflow_server: Any,
    tiny_model_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    make_random_lora: Callable[..., Path],
    new_run: Callable[..., str],
) -> Iterator[ResolverEngine]:
    root = tmp_path_factory.mktemp("resolver-ws")
    # the engine's workspace: the registry and cache come from its llmops.yaml (LLMOPS_WORKSPACE)
    (root / "llmops.yaml").write_text(f"registry: {{tracking_uri: '{mlflow_server.url}'}}\ncache_dir: cache\n")
    registry = connect(load_workspace(root))
    lora = make_random_lora(tiny_model_path, root / "lora", seed=7)
    name = f"resolved-{uuid.uuid4().hex[:6]}"
    intact = registry.adapters.register(name, lora, new_run(registry), {})
    tampered = registry.adapters.register(name, lora, new_run(registry), {})
    other = registry.adapters.register(f"{name}-gw", lora, new_run(registry), {})
    stored = _stored_file(mlflow_server.root, str(tampered.run_id), "adapter_model.safetensors")
    data = bytearray(stored.read_bytes())
    data[-1] ^= 0x01  # one bit of one weight
    stored.write_bytes(bytes(data))

    settings = EngineSettings(
        model=str(tiny_model_path),
        port=free_port(),
        served_model_name="reference",
        max_loras=2,
        api_key=new_engine_key(),
        resolve_adapters=True,
        workspace=str(root),
    )
    log_path = root / "vllm.log"
    process = start_engine(settings, log_path)
    try:
        yield ResolverEngine(settings, process, log_path, root / "cache", intact, tampered, other)
    finally:
        process.stop()


def test_a_fresh_engine_serves_a_registry_adapter_it_was_never_told_to_load(engine: ResolverEngine) -> None:
    name = engine.intact.lora_name  # NAME-v1-SHA12, what the gateway sends
    assert name not in engine.served()
    resp = engine.chat(name)
    assert resp.status_code == 200, resp.text
    assert resp.json()["model"] == name
    assert resp.json()["usage"]["completion_tokens"] >= 1
    listed = engine.served()
    assert name in listed and listed[name]["parent"]
    # the verified copy lies in the workspace's cache
    assert (engine.cache_dir / "adapters" / engine.intact.name / f"v1-{engine.intact.sha256[:12]}").is_dir()
    assert f"Resolved and loaded LoRA adapter '{name}' using RegistryLoRAResolver" in engine.log()


def test_name_and_version_alone_resolve_too(engine: ResolverEngine) -> None:
    name = f"{engine.intact.name}-v{engine.intact.version}"
    resp = engine.chat(name)
    assert resp.status_code == 200, resp.text
    assert name in engine.served()


def test_a_version_whose_stored_files_were_tampered_with_is_refused(engine: ResolverEngine) -> None:
    name = engine.tampered.lora_name
    resp = engine.chat(name)
    assert resp.status_code in (400, 404), resp.text
    assert name not in engine.served()
    assert f"refused adapter {name}" in engine.log()
    assert not (engine.cache_dir / "adapters" / engine.tampered.name / f"v2-{engine.tampered.sha256[:12]}").exists()


def test_a_digest_that_is_not_the_versions_is_refused(engine: ResolverEngine) -> None:
    wrong = "0" * 12 if not engine.intact.sha256.startswith("0" * 12) else "f" * 12
    name = f"{engine.intact.name}-v1-{wrong}"
    resp = engine.chat(name)
    assert resp.status_code in (400, 404), resp.text
    assert name not in engine.served()
    assert f"refused adapter {name}" in engine.log()


def test_an_unknown_adapter_or_version_is_not_found(engine: ResolverEngine) -> None:
    for name in (f"{engine.intact.name}-v9", f"nothing-here-{uuid.uuid4().hex[:6]}-v1"):
        resp = engine.chat(name)
        assert resp.status_code == 404, resp.text
        assert name not in engine.served()


def test_a_gateway_that_does_not_sync_adapters_routes_to_them_by_name(
    engine: ResolverEngine,
    mlflow_server: Any,
    tmp_path_factory: pytest.TempPathFactory,
    start_gateway: Callable[..., Any],
    gateway_keys: Any,
) -> None:
    """Engine replicas behind a Service: the gateway only names the adapter; the engine fetches it."""
    adapter = engine.other
    config = f"""
engines:
  pool: {{url: "{engine.settings.url}", model: reference, sync_adapters: false, api_key_env: {ENGINE_KEY_ENV}}}
routes:
  support:
    targets: [{{name: tuned, weight: 1, adapter: "{adapter.name}/1"}}]
limits: {{max_tokens: 16, read_timeout_s: 120}}
"""
    env = {"MLFLOW_TRACKING_URI": mlflow_server.url, ENGINE_KEY_ENV: str(engine.settings.api_key)}
    gw = start_gateway(tmp_path_factory.mktemp("resolver-gw"), config, env, timeout=180)
    try:
        assert adapter.lora_name not in engine.served()  # the gateway loaded nothing while it started
        body = {"model": "support", "messages": MESSAGES, "max_tokens": 8}
        resp = httpx.post(f"{gw.base_url}/chat/completions", json=body, headers=gateway_keys.user, timeout=120)
        assert resp.status_code == 200, resp.text
        deadline = time.monotonic() + 10
        while adapter.lora_name not in engine.served() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert adapter.lora_name in engine.served()
        assert f"Resolved and loaded LoRA adapter '{adapter.lora_name}' using RegistryLoRAResolver" in engine.log()
    finally:
        gw.process.stop()
