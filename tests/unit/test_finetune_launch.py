"""Launch requests: the entrypoint, what travels with a Ray job, loopback detection."""

from __future__ import annotations

import shlex
from pathlib import Path

from llmops.config.workspace import load_workspace
from llmops.finetune.launch import Launcher, LaunchRequest, LocalLauncher
from llmops.finetune.ray_launcher import EXCLUDES, RayLauncher, is_loopback, job_env
from llmops.finetune.runner import RunOptions


def test_entrypoint_is_the_local_run_command(tmp_path: Path) -> None:
    plain = LaunchRequest(tmp_path, "finetune/a.yaml")
    assert plain.argv() == ["python", "-m", "llmops.finetune", "run", "finetune/a.yaml"]
    full = LaunchRequest(
        tmp_path,
        "finetune/my job.yaml",
        RunOptions(resume=True, allow_warnings=True, max_steps=7, base_model="/m/ref"),
        python="/opt/py/bin/python",
    )
    assert shlex.split(full.entrypoint()) == [
        "/opt/py/bin/python", "-m", "llmops.finetune", "run", "finetune/my job.yaml",
        "--resume", "--allow-warnings", "--max-steps", "7", "--base-model", "/m/ref",
    ]  # fmt: skip
    multi = LaunchRequest(tmp_path, "finetune/a.yaml", gpus=4)
    assert multi.argv()[:5] == ["python", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4"]
    assert multi.argv()[5:] == ["-m", "llmops.finetune", "run", "finetune/a.yaml"]


def test_loopback_addresses() -> None:
    for address in ("http://127.0.0.1:8265", "127.0.0.1:8265", "http://localhost:1", "http://[::1]:8265"):
        assert is_loopback(address), address
    assert not is_loopback("http://10.0.0.5:8265") and not is_loopback("ray-head.internal:8265")


def test_job_env_points_at_the_same_registry(tmp_path: Path, monkeypatch: object) -> None:
    ws = load_workspace(tmp_path, env={})
    env = job_env(ws, tmp_path / "finetune" / "a.yaml")
    assert env["MLFLOW_TRACKING_URI"] == ws.tracking_uri and env["MLFLOW_TRACKING_URI"].startswith("sqlite:////")
    assert env["LLMOPS_ARTIFACT_ROOT"] == str(ws.artifact_root) and Path(env["LLMOPS_ARTIFACT_ROOT"]).is_absolute()
    served = load_workspace(tmp_path, env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"})
    env = job_env(served, tmp_path / "finetune" / "a.yaml")
    assert env["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5000" and "LLMOPS_ARTIFACT_ROOT" not in env
    assert {".llmops", ".venv", ".git"} <= set(EXCLUDES)
    assert env["RAY_JOB_STOP_WAIT_TIME_S"] == "120"  # time to checkpoint between SIGTERM and SIGKILL


def test_both_launchers_satisfy_the_protocol() -> None:
    def accepts(launcher: Launcher) -> Launcher:
        return launcher

    assert callable(LocalLauncher.submit) and callable(RayLauncher.submit)
    assert accepts  # mypy checks the structural match in llmops; here only the names matter
