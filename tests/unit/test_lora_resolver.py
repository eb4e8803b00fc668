"""The vLLM LoRA resolver plugin without an engine: name parsing, the opt-in, the entry point, refusals."""

from __future__ import annotations

import asyncio
import importlib
import logging
import threading
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from vllm.lora.resolver import LoRAResolverRegistry

from llmops import lora_resolver as plugin
from llmops.engine import EngineSettings, engine_env
from llmops.errors import IntegrityError, RegistryError
from llmops.lora_resolver import LoraName, RegistryLoRAResolver, parse_lora_name
from llmops.names import NAME_PATTERN
from llmops.registry.adapters import lora_name

REPO = Path(__file__).resolve().parents[2]
SHA = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("triage-v3-0123456789ab", LoraName("triage", 3, "0123456789ab")),
        ("triage-v3", LoraName("triage", 3, None)),
        ("support.bot-v2-v10", LoraName("support.bot-v2", 10, None)),
        ("a-v1-v2-0123456789ab", LoraName("a-v1", 2, "0123456789ab")),
        ("x_1-v12", LoraName("x_1", 12, None)),
    ],
)
def test_adapter_version_names_are_parsed(text: str, expected: LoraName) -> None:
    assert parse_lora_name(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "reference",  # the base model
        "triage",
        "triage-v0",
        "triage-v01",
        "Triage-v1",
        "triage-v1-0123",  # a short digest
        "triage-v1-0123456789AB",  # digests are lowercase
        "triage-v1-0123456789abc",  # 13 digits
        "../etc-v1",
        "/tmp/x-v1",
        "triage-v1 ",
        "",
    ],
)
def test_other_names_are_left_to_other_resolvers(text: str) -> None:
    assert parse_lora_name(text) is None


@given(
    st.from_regex(f"^{NAME_PATTERN}$", fullmatch=True),
    st.integers(1, 10**6),
    st.text("0123456789abcdef", min_size=64, max_size=64),
)
def test_the_gateways_lora_name_round_trips(name: str, version: int, sha256: str) -> None:
    """Whatever the gateway sends for an adapter version, the resolver reads back the same version and digest."""
    assert parse_lora_name(lora_name(name, version, sha256)) == LoraName(name, version, sha256[:12])


def test_the_plugin_is_declared_for_vllm_and_points_at_register() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    target = project["entry-points"]["vllm.general_plugins"]["llmops_lora_resolver"]
    module, _, attr = target.partition(":")
    assert getattr(importlib.import_module(module), attr) is plugin.register


@pytest.fixture
def resolvers(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """vLLM's resolver registry (a process global), emptied for the test and restored after it."""
    fresh: dict[str, object] = {}
    monkeypatch.setattr(LoRAResolverRegistry, "resolvers", fresh)
    return fresh


def test_register_does_nothing_unless_the_engine_opts_in(
    resolvers: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every vLLM in the environment runs the plugin: without LLMOPS_LORA_RESOLVER=registry it stays out."""
    for value in (None, "", "0", "filesystem"):
        if value is None:
            monkeypatch.delenv("LLMOPS_LORA_RESOLVER", raising=False)
        else:
            monkeypatch.setenv("LLMOPS_LORA_RESOLVER", value)
        plugin.register()
        assert resolvers == {}
    monkeypatch.setenv("LLMOPS_LORA_RESOLVER", "registry")
    monkeypatch.setenv("VLLM_ALLOW_RUNTIME_LORA_UPDATING", "true")
    plugin.register()
    assert isinstance(resolvers.get("llmops-registry"), RegistryLoRAResolver)


def test_register_connects_to_no_registry(resolvers: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    """Registering is cheap: an unreachable registry only matters once an adapter is asked for."""
    monkeypatch.setenv("LLMOPS_LORA_RESOLVER", "registry")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    plugin.register()
    assert "llmops-registry" in resolvers


def test_engine_settings_turn_the_resolver_on_in_the_engines_environment(tmp_path: Path) -> None:
    off = engine_env(EngineSettings(model="m"), base={}, device="cpu")
    assert "LLMOPS_LORA_RESOLVER" not in off and "LLMOPS_WORKSPACE" not in off
    on = engine_env(EngineSettings(model="m", resolve_adapters=True, workspace=str(tmp_path)), base={}, device="cpu")
    assert on["LLMOPS_LORA_RESOLVER"] == "registry"
    assert on["LLMOPS_WORKSPACE"] == str(tmp_path)
    assert on["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"  # vLLM asks resolvers only with it


@pytest.fixture
def plugin_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Records of the plugin's logger (a child of vLLM's "vllm" logger, which does not propagate)."""
    logger = logging.getLogger("vllm.plugins.llmops_lora_resolver")
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)


def test_a_found_version_becomes_a_lora_request_fetched_off_the_event_loop(tmp_path: Path) -> None:
    asked: list[tuple[LoraName, bool]] = []

    def fetch(wanted: LoraName) -> Path:
        asked.append((wanted, threading.current_thread() is threading.main_thread()))
        return tmp_path

    request = asyncio.run(RegistryLoRAResolver(fetch).resolve_lora("/models/base", "triage-v3-0123456789ab"))
    assert request is not None
    assert (request.lora_name, request.lora_path) == ("triage-v3-0123456789ab", str(tmp_path))
    assert request.lora_int_id > 0
    assert asked == [(LoraName("triage", 3, "0123456789ab"), False)]  # the blocking call ran in a worker thread


def test_unknown_other_and_refused_adapters_resolve_to_nothing(
    tmp_path: Path, plugin_log: pytest.LogCaptureFixture
) -> None:
    def fetch(wanted: LoraName) -> Path | None:
        if wanted.name == "tampered":
            raise IntegrityError("adapter tampered/1: sha256 mismatch")
        if wanted.name == "down":
            raise RegistryError("registry is unreachable", uri="http://u:secret@registry:5000")
        return None

    resolver = RegistryLoRAResolver(fetch)
    for name in ("nope-v1", "reference", "tampered-v1", "down-v2"):
        assert asyncio.run(resolver.resolve_lora("/models/base", name)) is None
    errors = [r.getMessage() for r in plugin_log.records if r.levelno == logging.ERROR]
    assert any("tampered-v1" in e and "sha256 mismatch" in e for e in errors), errors
    assert any("down-v2" in e and "unreachable" in e for e in errors), errors
    assert not any("secret" in e for e in errors)
