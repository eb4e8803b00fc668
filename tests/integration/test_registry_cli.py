"""`llmops registry serve`, `llmops doctor`, `llmops audit` against real servers on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable

import pytest

from llmops.process import free_port, http_ok

pytestmark = pytest.mark.integration

Cli = Callable[..., subprocess.CompletedProcess[str]]


def test_registry_serve_starts_mlflow_and_stops_on_ctrl_c(mlflow_server, llmops_bin: str) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [llmops_bin, "registry", "serve", "--port", str(port), "--workspace", str(mlflow_server.root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 480  # a loaded CI machine starts MLflow slowly
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "MLflow UI" in line or proc.poll() is not None:
                break
        assert f"http://127.0.0.1:{port}" in "".join(lines), "".join(lines)
        assert http_ok(f"http://127.0.0.1:{port}/health")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        assert not http_ok(f"http://127.0.0.1:{port}/health", timeout=1)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_registry_serve_refuses_a_busy_port(mlflow_server, run_llmops: Cli) -> None:
    port = mlflow_server.url.rsplit(":", 1)[1]
    result = run_llmops(
        "registry", "serve", "--port", port, "--workspace", str(mlflow_server.root), cwd=mlflow_server.root
    )
    assert result.returncode == 2
    assert "already answers" in result.stderr


def test_doctor_reports_versions_registry_and_gpu(mlflow_server, tmp_path, run_llmops: Cli) -> None:
    result = run_llmops("doctor", cwd=tmp_path, env={"MLFLOW_TRACKING_URI": mlflow_server.url})
    assert result.returncode == 0, result.stdout + result.stderr
    for word in ("import transformers", "import mlflow", "vLLM (engine)", "registry", "GPU"):
        assert word in result.stdout
    assert mlflow_server.url in result.stdout


def test_doctor_fails_on_unreachable_registry(tmp_path, run_llmops: Cli) -> None:
    result = run_llmops("doctor", cwd=tmp_path, env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"})
    assert result.returncode == 1
    assert "unreachable" in result.stdout
