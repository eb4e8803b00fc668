"""Launch requests: the entrypoint, what travels with a Ray job, loopback detection."""

from __future__ import annotations

import inspect
import shlex
from pathlib import Path

import pytest

from llmops.config.workspace import load_workspace
from llmops.finetune.launch import JobControl, Launcher, LaunchRequest, LocalLauncher
from llmops.finetune.ray_launcher import EXCLUDES, RayLauncher, is_loopback, job_env
from llmops.finetune.runner import RunOptions


def test_entrypoint_is_the_local_run_command(tmp_path: Path) -> None:
    plain = LaunchRequest(tmp_path, "finetune/a.yaml")
    assert plain.argv() == ["python", "-m", "llmops", "finetune", "run", "finetune/a.yaml"]
    full = LaunchRequest(
        tmp_path,
        "finetune/my job.yaml",
        RunOptions(resume=True, allow_warnings=True, max_steps=7, base_model="/m/ref"),
        python="/opt/py/bin/python",
    )
    assert shlex.split(full.entrypoint()) == [
        "/opt/py/bin/python", "-m", "llmops", "finetune", "run", "finetune/my job.yaml",
        "--resume", "--allow-warnings", "--max-steps", "7", "--base-model", "/m/ref",
    ]  # fmt: skip
    multi = LaunchRequest(tmp_path, "finetune/a.yaml", gpus=4)
    assert multi.argv()[:5] == ["python", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4"]
    assert multi.argv()[5:] == ["-m", "llmops", "finetune", "run", "finetune/a.yaml"]


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


def protocol_methods(protocol: type) -> dict[str, inspect.Signature]:
    """The methods a (not runtime-checkable) Protocol declares, with their signatures, annotations resolved."""
    return {
        name: inspect.signature(member, eval_str=True)
        for name, member in vars(protocol).items()
        if not name.startswith("_") and inspect.isfunction(member)
    }


def assert_implements(cls: type, protocol: type) -> None:
    """``cls`` has every method of ``protocol``, taking the same parameters (name, kind, annotation, default)
    in the same order and returning the same type; extra parameters are allowed only with defaults."""
    methods = protocol_methods(protocol)
    assert methods, f"{protocol.__name__} declares no methods"
    for name, wanted in methods.items():
        member = getattr(cls, name, None)
        assert inspect.isfunction(member), f"{cls.__name__} lacks {protocol.__name__}.{name}()"
        got = inspect.signature(member, eval_str=True)
        need, have = list(wanted.parameters.values()), list(got.parameters.values())
        where = f"{cls.__name__}.{name}{got} vs {protocol.__name__}.{name}{wanted}"
        assert have[: len(need)] == need, where
        extra = have[len(need) :]
        optional = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        assert all(p.default is not p.empty or p.kind in optional for p in extra), where
        assert got.return_annotation == wanted.return_annotation, where


def test_both_launchers_satisfy_the_protocol() -> None:
    assert_implements(LocalLauncher, Launcher)
    assert_implements(RayLauncher, Launcher)
    assert_implements(RayLauncher, JobControl)

    # the check itself fails for a renamed parameter, a missing method, or another return type
    class RenamedParameter:
        def submit(self, req: LaunchRequest) -> str:
            return ""

    class OtherReturnType:
        def submit(self, request: LaunchRequest) -> int:
            return 0

    for wrong, protocol in ((RenamedParameter, Launcher), (OtherReturnType, Launcher), (LocalLauncher, JobControl)):
        with pytest.raises(AssertionError):
            assert_implements(wrong, protocol)
