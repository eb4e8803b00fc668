"""The images' entrypoint (deploy/docker/entrypoint.py): a missing key or URI ends the container at once with one
log line naming it (exit 78), instead of a server crash loop. The container smoke test (make deploy-check) checks
the same in the built images; this runs it as a plain script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ENTRYPOINT = Path(__file__).resolve().parents[2] / "deploy" / "docker" / "entrypoint.py"
CONFIG = """
engines:
  engine: {url: "http://engine:8000", api_key_env: LLMOPS_ENGINE_KEY}
routes:
  r: {targets: [{name: a, weight: 1}]}
auth:
  keys:
    - {name: app, env: LLMOPS_GATEWAY_KEY}
    - {name: ops, env: LLMOPS_GATEWAY_ADMIN_KEY, scope: admin}
"""


def run(role: str, *command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin"}
    argv = [sys.executable, str(ENTRYPOINT), role, *command]
    return subprocess.run(argv, env={**base, **env}, capture_output=True, text=True, timeout=60, check=False)


def gateway(config: Path) -> tuple[str, ...]:
    return ("llmops", "serve", "gateway", "--config", str(config))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG)
    return path


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "MLFLOW_TRACKING_URI"),
        (
            {"MLFLOW_TRACKING_URI": "http://registry:5000"},
            "LLMOPS_GATEWAY_KEY, LLMOPS_GATEWAY_ADMIN_KEY, LLMOPS_ENGINE_KEY",
        ),
        (
            {"MLFLOW_TRACKING_URI": "http://r", "LLMOPS_GATEWAY_KEY": "k", "LLMOPS_GATEWAY_ADMIN_KEY": "k"},
            "LLMOPS_ENGINE_KEY",
        ),
    ],
)
def test_the_gateway_refuses_to_start_without_a_variable_and_names_it(
    config: Path, env: dict[str, str], named: str
) -> None:
    done = run("gateway", *gateway(config), env=env)
    assert done.returncode == 78
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert f"not set: {named}" in done.stderr


@pytest.mark.parametrize(
    ("role", "named"),
    [("registry", "MLFLOW_BACKEND_STORE_URI"), ("engine-cpu", "LLMOPS_ENGINE_KEY"), ("trainer", "MLFLOW_TRACKING_URI")],
)
def test_each_role_names_its_missing_variable(role: str, named: str) -> None:
    done = run(role, "true", env={})
    assert done.returncode == 78
    assert done.stderr.strip() == (
        f"llmops-entrypoint: {role}: required environment variable(s) not set: {named}; "
        "pass them with -e/--env-file (docker) or a Secret (Kubernetes)"
    )


def test_a_missing_gateway_config_is_named(tmp_path: Path) -> None:
    done = run("gateway", *gateway(tmp_path / "absent.yaml"), env={"MLFLOW_TRACKING_URI": "http://r"})
    assert done.returncode == 78
    assert "absent.yaml is missing" in done.stderr


def test_with_everything_set_it_runs_the_command() -> None:
    env = {"MLFLOW_BACKEND_STORE_URI": "postgresql://u:p@db/mlflow"}
    done = run("registry", sys.executable, "-c", "print('started')", env=env)
    assert (done.returncode, done.stdout, done.stderr) == (0, "started\n", "")
