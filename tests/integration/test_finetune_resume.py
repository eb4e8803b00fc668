"""Crash safety of `llmops finetune run` (real console script): SIGTERM, kill -9, then --resume.

Nothing is registered by an interrupted run; --resume continues the same MLflow run from the latest
*complete* checkpoint, and the step counter picks up where that checkpoint left off.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from llmops.finetune.checkpoints import MARKER, latest_complete
from llmops.registry import connect

pytestmark = pytest.mark.integration

MAX_STEPS = 12
Cli = Callable[..., subprocess.CompletedProcess[str]]


def start(llmops_bin: str, ft: Any, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "PYTHONUNBUFFERED": "1", **ft.env}
    return subprocess.Popen(
        [llmops_bin, "finetune", "run", "finetune/support-triage.yaml", *args],
        cwd=ft.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_checkpoint(proc: subprocess.Popen[str], folder: Path, at_least: int, timeout: float = 240) -> int:
    """Poll until a checkpoint of step >= ``at_least`` is marked complete; return its step."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = latest_complete(folder)
        if done is not None and int(done.name.rsplit("-", 1)[1]) >= at_least:
            return int(done.name.rsplit("-", 1)[1])
        if proc.poll() is not None:
            raise AssertionError(
                f"training ended early ({proc.returncode}):\n{proc.stdout.read() if proc.stdout else ''}"
            )
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("no complete checkpoint appeared in time")


def versions(ft: Any) -> list[int]:
    return [v.version for v in connect(ft.ws).adapters.versions(ft.adapter("support-triage"))]


def test_sigterm_then_kill9_then_resume(ft, llmops_bin: str, run_llmops: Cli, invoke_llmops: Cli) -> None:
    ft.write_job("support-triage", training={"max_steps": MAX_STEPS, "save_steps": 2})
    checkpoints = ft.ws.home / "finetune" / "support-triage" / "checkpoints"

    # 1. SIGTERM: a checkpoint at the step it stopped at, a clean exit 75, nothing registered
    proc = start(llmops_bin, ft)
    wait_for_checkpoint(proc, checkpoints, 2)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 75, out
    stopped = re.search(r"SIGTERM at step (\d+)/12; checkpoint saved", out)
    assert stopped, out
    stop_step = int(stopped.group(1))
    last = latest_complete(checkpoints)
    assert last is not None and last.name == f"checkpoint-{stop_step}" and (last / MARKER).is_file()
    assert versions(ft) == []

    # 2. --resume, then kill -9 after a later checkpoint: again nothing registered
    proc = start(llmops_bin, ft, "--resume")
    killed_after = wait_for_checkpoint(proc, checkpoints, stop_step + 2)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    # the step counter continued from the checkpoint (the task's first line: no loss yet)
    assert re.search(rf"^training: {stop_step}/{MAX_STEPS}$", out, re.M), out
    assert versions(ft) == []

    # 3. --resume continues from the latest *complete* checkpoint (partial ones are ignored) and registers
    resume_from = latest_complete(checkpoints)
    assert resume_from is not None
    resumed_step = int(resume_from.name.rsplit("-", 1)[1])
    assert resumed_step >= killed_after
    partial = checkpoints / f"checkpoint-{resumed_step + 1}"
    partial.mkdir()  # what a kill mid-save leaves: a folder without the completeness marker
    (partial / "adapter_model.safetensors").write_bytes(b"truncated")
    done = run_llmops("finetune", "run", "finetune/support-triage.yaml", "--resume", cwd=ft.root, env=ft.env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"from checkpoint checkpoint-{resumed_step}" in done.stdout
    assert re.search(rf"^training: {resumed_step}/{MAX_STEPS}$", done.stdout, re.M), done.stdout
    assert versions(ft) == [1]

    info = connect(ft.ws).adapters.get(f"{ft.adapter('support-triage')}/1")
    client = MlflowClient(tracking_uri=ft.ws.tracking_uri)
    run = client.get_run(str(info.run_id))
    assert run.info.status == "FINISHED"
    assert run.data.tags["llmops.resumed_from_step"] == str(resumed_step)
    steps = {m.step for m in client.get_metric_history(run.info.run_id, "loss")}
    assert set(range(resumed_step + 1, MAX_STEPS + 1)) <= steps  # one run holds the whole history
    assert not checkpoints.exists()  # checkpoints are removed once the adapter is registered

    again = invoke_llmops("finetune", "run", "finetune/support-triage.yaml", "--resume", cwd=ft.root, env=ft.env)
    assert again.returncode == 2 and "nothing to resume" in again.stderr
