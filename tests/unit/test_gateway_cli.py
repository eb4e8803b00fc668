"""``llmops serve engine|gateway`` wiring, without starting vLLM or uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llmops.cli.main import app
from llmops.client import chat_model
from llmops.errors import InvalidNameError

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def test_serve_engine_starts_vllm_with_lora_on_loopback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import llmops.cli.serve

    seen: dict[str, Any] = {}

    class Proc:
        pid = 4242
        stopped = False

        def alive(self) -> bool:
            return False  # exits at once, so the command returns

        def stop(self) -> None:
            Proc.stopped = True

    def fake_start(settings: Any, log_path: Path) -> Proc:
        seen["settings"], seen["log"] = settings, log_path
        return Proc()

    monkeypatch.setattr(llmops.cli.serve, "start_engine", fake_start)
    monkeypatch.setattr(llmops.cli.serve, "locate_base", lambda ws, model: "/models/base")
    result = runner.invoke(app, ["serve", "engine", "--port", "8011", "--max-loras", "3", "-w", str(tmp_path)])
    assert result.exit_code == 1 and "vLLM exited" in result.output
    settings = seen["settings"]
    assert settings.model == "/models/base" and settings.host == "127.0.0.1" and settings.port == 8011
    assert settings.enable_lora and settings.max_loras == 3
    assert Proc.stopped


def test_serve_gateway_runs_the_app_under_uvicorn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import uvicorn

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: seen.update(config=self.config))
    monkeypatch.setenv("LLMOPS_GATEWAY_KEY", "k")
    monkeypatch.setenv("LLMOPS_GATEWAY_ADMIN_KEY", "a")
    result = runner.invoke(
        app,
        ["serve", "gateway", "--config", str(REPO / "serving" / "gateway.yaml"), "--port", "9999", "-w", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    config = seen["config"]
    assert config.port == 9999 and config.host == "127.0.0.1" and config.loop == "uvloop"
    assert config.http == "httptools" and config.lifespan == "on"
    assert config.timeout_graceful_shutdown == 10  # server.drain_s: streams drain this long on SIGTERM
    assert set(config.app.settings.routes) == {"support-triage"}


def test_serve_gateway_reports_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "gateway.yaml"
    bad.write_text("engines: {e: {url: 'http://x'}}\nroutes: {r: {targets: [{name: a, weight: 1}]}}\n")
    result = runner.invoke(app, ["serve", "gateway", "--config", str(bad), "-w", str(tmp_path)], env={})
    assert result.exit_code == 2
    assert "no API key" in result.output


def test_chat_model_points_langchain_at_a_route() -> None:
    llm = chat_model(
        "support-triage",
        base_url="http://gw:8080/v1",
        api_key="k",
        session="s-1",
        prompt_variables={"message": "hi"},
        temperature=0,
    )
    assert llm.model_name == "support-triage"
    assert llm.openai_api_base == "http://gw:8080/v1"
    assert llm.default_headers == {"x-llmops-session": "s-1"}
    assert llm.extra_body == {"prompt_variables": {"message": "hi"}}
    with pytest.raises(InvalidNameError):
        chat_model("Not A Route")
