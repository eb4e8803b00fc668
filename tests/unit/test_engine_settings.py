"""The vLLM launcher's command line and environment (no server started here)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from llmops.engine import EngineSettings, engine_argv, engine_env, start_engine
from llmops.errors import ServerError


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_cpu_command_line_has_lora_and_cpu_flags() -> None:
    s = EngineSettings(model="/models/ref", port=8123, served_model_name="ref", max_loras=3)
    argv = engine_argv(s, device="cpu")
    assert argv[:3] == [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
    assert flag(argv, "--model") == "/models/ref"
    assert flag(argv, "--served-model-name") == "ref"
    assert (flag(argv, "--host"), flag(argv, "--port")) == ("127.0.0.1", "8123")
    assert "--enable-lora" in argv
    assert (flag(argv, "--max-loras"), flag(argv, "--max-lora-rank")) == ("3", "16")
    assert flag(argv, "--max-model-len") == "512"
    assert flag(argv, "--dtype") == "float32"
    assert float(flag(argv, "--gpu-memory-utilization")) <= 0.5
    assert "--enforce-eager" in argv


def test_gpu_command_line_leaves_vllm_defaults() -> None:
    argv = engine_argv(EngineSettings(model="org/model", extra_args=("--seed", "1")), device="cuda")
    assert "--dtype" not in argv and "--enforce-eager" not in argv
    assert "--gpu-memory-utilization" not in argv
    assert flag(argv, "--served-model-name") == "org/model"
    assert argv[-2:] == ["--seed", "1"]


def test_lora_can_be_disabled() -> None:
    argv = engine_argv(EngineSettings(model="m", enable_lora=False), device="cpu")
    assert "--enable-lora" not in argv and "--max-loras" not in argv


def test_environment_is_offline_and_allows_runtime_lora() -> None:
    env = engine_env(EngineSettings(model="m", kv_cache_gib=2), base={"PATH": "/bin"}, device="cpu")
    assert env["PATH"] == "/bin"
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "2"
    assert env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    assert env["HF_HUB_OFFLINE"] == env["TRANSFORMERS_OFFLINE"] == "1"
    assert env["VLLM_NO_USAGE_STATS"] == env["DO_NOT_TRACK"] == "1"
    gpu_env = engine_env(EngineSettings(model="m", offline=False), base={}, device="cuda")
    assert "VLLM_CPU_KVCACHE_SPACE" not in gpu_env and "HF_HUB_OFFLINE" not in gpu_env


def test_urls_map_wildcard_hosts_to_loopback() -> None:
    assert EngineSettings(model="m", port=9000).base_url == "http://127.0.0.1:9000/v1"
    assert EngineSettings(model="m", host="0.0.0.0", port=9000).url == "http://127.0.0.1:9000"


def test_settings_are_validated() -> None:
    with pytest.raises(ValidationError):
        EngineSettings(model="m", port=0)
    with pytest.raises(ValidationError):
        EngineSettings(model="m", unknown=1)  # type: ignore[call-arg]


def test_start_refuses_bad_inputs_before_spawning(tmp_path: Path) -> None:
    with pytest.raises(ServerError, match="max_lora_rank"):
        start_engine(EngineSettings(model=str(tmp_path), max_lora_rank=12, device="cpu"), tmp_path / "log")
    with pytest.raises(ServerError, match="does not exist"):
        start_engine(EngineSettings(model=str(tmp_path / "missing"), device="cpu"), tmp_path / "log")
    assert not (tmp_path / "log").exists()
