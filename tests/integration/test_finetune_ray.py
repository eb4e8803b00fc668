"""`llmops finetune launch` through a real local Ray head (Ray Jobs API), on loopback.

The head is started with its own temp dir; at the end it is stopped by the PIDs this test started (the
processes whose command line names that temp dir, and their descendants), never by a name-wide kill.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from llmops.finetune.ray_launcher import RayLauncher
from llmops.process import free_port, http_ok
from llmops.registry import connect

pytestmark = pytest.mark.integration

RAY = str(Path(sys.executable).with_name("ray"))
Cli = Callable[..., subprocess.CompletedProcess[str]]


@dataclass
class RayHead:
    address: str
    temp_dir: Path
    pids: set[int]


def _ours(temp_dir: Path) -> list[psutil.Process]:
    """Processes whose command line names our temp dir, and all their descendants."""
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(str(temp_dir) in part for part in proc.info["cmdline"] or ()):
                found[proc.pid] = proc
                for child in proc.children(recursive=True):
                    found[child.pid] = child
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    found.pop(os.getpid(), None)
    return list(found.values())


def _stop(processes: list[psutil.Process]) -> None:
    for proc in processes:
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(processes, timeout=15)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(alive, timeout=10)


@pytest.fixture(scope="module")
def ray_head() -> Iterator[RayHead]:
    # a short path: Ray's unix sockets live under it and must stay below the OS path length limit
    temp_dir = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
    port, dashboard = free_port(), free_port()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    started = subprocess.run(
        [
            RAY,
            "start",
            "--head",
            "--port",
            str(port),
            "--dashboard-port",
            str(dashboard),
            "--dashboard-host",
            "127.0.0.1",
            "--node-ip-address",
            "127.0.0.1",
            "--num-cpus",
            "1",
            "--include-dashboard",
            "true",
            "--temp-dir",
            str(temp_dir),
            "--object-store-memory",
            "100000000",
            "--disable-usage-stats",
        ],  # fmt: skip
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    head = RayHead(f"http://127.0.0.1:{dashboard}", temp_dir, set())
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        deadline = time.monotonic() + 120
        while not http_ok(f"{head.address}/api/version") and time.monotonic() < deadline:
            time.sleep(0.5)
        assert http_ok(f"{head.address}/api/version"), "Ray dashboard did not come up"
        head.pids = {p.pid for p in _ours(temp_dir)}
        assert head.pids, "no Ray process found under the temp dir"
        yield head
    finally:
        _stop(_ours(temp_dir))
        leftover = [p.pid for p in _ours(temp_dir)]
        assert not leftover, f"Ray processes still alive: {leftover}"
        for pid in head.pids:
            assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_launch_on_ray_registers_an_adapter(ft, ray_head: RayHead, run_llmops: Cli) -> None:
    ft.write_job("support-triage", training={"max_steps": 3, "save_steps": 10})
    (ft.root / ".llmops" / "junk").mkdir(parents=True, exist_ok=True)  # state must not travel with the job
    env = {**ft.env, "OMP_NUM_THREADS": "1"}
    launched = run_llmops(
        "finetune", "launch", "finetune/support-triage.yaml", "--cluster", ray_head.address,
        "--python", sys.executable, "--wait", "--timeout", "420",
        cwd=ft.root, env=env, timeout=480,
    )  # fmt: skip
    assert launched.returncode == 0, launched.stdout + launched.stderr
    job_id = re.search(r"submitted (llmops-support-triage-[0-9a-f]{8})", launched.stdout)
    assert job_id, launched.stdout
    assert f"job {job_id.group(1)}: SUCCEEDED" in launched.stdout
    assert f"registered adapter {ft.adapter('support-triage')}/1" in launched.stdout  # the job's own log

    info = connect(ft.ws).adapters.get(f"{ft.adapter('support-triage')}/1")
    assert info.tags["llmops.git_commit"]  # passed along: the uploaded copy has no .git
    assert info.tags["llmops.prompt_version"] == ft.prompt_ref

    status = run_llmops("finetune", "status", job_id.group(1), "--cluster", ray_head.address, cwd=ft.root)
    assert status.returncode == 0 and status.stdout.strip() == "SUCCEEDED"
    as_json = run_llmops("finetune", "status", job_id.group(1), "--cluster", ray_head.address, "--json", cwd=ft.root)
    assert json.loads(as_json.stdout) == {"job_id": job_id.group(1), "cluster": ray_head.address, "status": "SUCCEEDED"}
    logs = run_llmops("finetune", "logs", job_id.group(1), "--cluster", ray_head.address, cwd=ft.root)
    assert "registered adapter" in logs.stdout
    unknown = run_llmops("finetune", "status", "llmops-nope-00000000", "--cluster", ray_head.address, cwd=ft.root)
    assert unknown.returncode == 2 and "llmops-nope-00000000" in unknown.stderr


def test_cancel_stops_the_job_with_a_checkpoint_and_registers_nothing(ft, ray_head: RayHead, run_llmops: Cli) -> None:
    ft.write_job("long", training={"max_steps": 400, "save_steps": 1000})
    env = {**ft.env, "OMP_NUM_THREADS": "1"}
    launched = run_llmops(
        "finetune", "launch", "finetune/long.yaml", "--cluster", ray_head.address, "--python", sys.executable,
        cwd=ft.root, env=env,
    )  # fmt: skip
    assert launched.returncode == 0, launched.stdout + launched.stderr
    found = re.search(r"submitted (llmops-long-[0-9a-f]{8})", launched.stdout)
    assert found, launched.stdout
    job_id = found.group(1)
    ray = RayLauncher(ray_head.address)  # polling in-process; the commands under test run as the real CLI
    deadline = time.monotonic() + 240
    under_way = re.compile(r"^training: [1-9]\d*/400  loss", re.M)  # a progress line after the first step
    while not under_way.search(ray.logs(job_id)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert under_way.search(ray.logs(job_id)), ray.logs(job_id)
    cancelled = run_llmops("finetune", "cancel", job_id, "--cluster", ray_head.address, cwd=ft.root)
    assert cancelled.returncode == 0 and "stop requested" in cancelled.stdout
    assert ray.wait(job_id, timeout_s=180, poll_s=0.5) == "STOPPED"
    logs = run_llmops("finetune", "logs", job_id, "--cluster", ray_head.address, cwd=ft.root).stdout
    assert re.search(r"SIGTERM at step \d+/400; checkpoint saved", logs), logs  # graceful: checkpoint, not SIGKILL
    assert connect(ft.ws).adapters.versions(ft.adapter("long")) == []
