"""Submit fine-tune jobs to a Ray cluster through the Ray Jobs API (``JobSubmissionClient``).

What travels with a job:

* the workspace as ``runtime_env.working_dir`` (without ``.llmops``, ``.venv``, ``.git``: state,
  environments and history stay home), so the job reads the same job file, prompts and data;
* ``env_vars`` that make the job reach the *same* registry: ``MLFLOW_TRACKING_URI`` (for the embedded
  SQLite registry its absolute ``sqlite:///`` URI, usable when the cluster shares this filesystem),
  ``LLMOPS_ARTIFACT_ROOT`` for an embedded registry's artifacts, and ``LLMOPS_GIT_COMMIT``, since the
  uploaded copy has no ``.git`` to read the commit from;
* ``entrypoint_num_gpus`` = the job's ``resources.gpus``; more than one GPU runs under torchrun;
* ``RAY_JOB_STOP_WAIT_TIME_S``: on ``cancel`` Ray sends SIGTERM, then SIGKILL after this many seconds
  (default 3); we give the job :data:`STOP_GRACE_S` to finish its step and save a checkpoint.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from llmops.config.workspace import Workspace
from llmops.errors import LaunchError
from llmops.finetune.job import FinetuneJob, job_name
from llmops.finetune.launch import TERMINAL_STATES, LaunchRequest, RunOptions
from llmops.gitinfo import file_info
from llmops.models.base import resolve_base
from llmops.registry import tags

EXCLUDES = (".llmops", ".venv", ".git", "**/__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache")
#: environment passed through to the job when set here (offline mode, caches, thread count)
PASSTHROUGH_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "OMP_NUM_THREADS", "LLMOPS_ACTOR")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: seconds between Ray's SIGTERM and SIGKILL on cancel: time to finish a step and write a checkpoint
STOP_GRACE_S = 120


def is_loopback(address: str) -> bool:
    host = urlparse(address if "://" in address else f"http://{address}").hostname or ""
    return host in _LOOPBACK


def job_env(ws: Workspace, job_path: Path, *, stop_grace_s: int = STOP_GRACE_S) -> dict[str, str]:
    """What the job needs in its environment to write to this workspace's registry, and how long Ray
    waits after SIGTERM before SIGKILL (``RAY_JOB_STOP_WAIT_TIME_S``, read by the job's supervisor)."""
    env = {k: os.environ[k] for k in PASSTHROUGH_ENV if os.environ.get(k)}
    env["RAY_JOB_STOP_WAIT_TIME_S"] = str(stop_grace_s)
    env["MLFLOW_TRACKING_URI"] = ws.tracking_uri
    if ws.is_embedded_registry:
        env["LLMOPS_ARTIFACT_ROOT"] = str(ws.artifact_root)
    commit = file_info(job_path).commit
    if commit:
        env["LLMOPS_GIT_COMMIT"] = commit
    return env


def build_request(
    ws: Workspace,
    job_path: Path,
    job: FinetuneJob,
    options: RunOptions,
    *,
    address: str,
    python: str = "python",
    stop_grace_s: int = STOP_GRACE_S,
) -> LaunchRequest:
    """The request for ``job``; on a loopback cluster the reference base model is passed by its built path
    (the job's working dir is a fresh copy without ``.llmops``, where it would otherwise be rebuilt)."""
    if job.base_model == "reference" and options.base_model is None and is_loopback(address):
        options = RunOptions(
            resume=options.resume,
            allow_warnings=options.allow_warnings,
            max_steps=options.max_steps,
            base_model=resolve_base(ws, "reference").path,
        )
    rel = job_path.resolve().relative_to(ws.root).as_posix()
    return LaunchRequest(
        workspace=ws.root,
        job_file=rel,
        options=options,
        gpus=job.resources.gpus,
        cpus=job.resources.cpus,
        env=job_env(ws, job_path, stop_grace_s=stop_grace_s),
        python=python,
    )


class RayLauncher:
    """A :class:`~llmops.finetune.launch.Launcher` and ``JobControl`` over one Ray cluster's Jobs API."""

    def __init__(self, address: str) -> None:
        from ray.job_submission import JobSubmissionClient

        self.address = address
        try:
            self._client = JobSubmissionClient(address)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise LaunchError(f"cannot reach the Ray cluster at {address}: {exc}") from exc

    def _call(self, what: str, job_id: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (RuntimeError, ConnectionError, ValueError) as exc:
            raise LaunchError(f"Ray cluster {self.address}: cannot {what} job {job_id}: {exc}") from exc

    def submit(self, request: LaunchRequest) -> str:
        name = job_name(Path(request.job_file))
        submission_id = f"llmops-{name}-{uuid.uuid4().hex[:8]}"
        runtime_env = {"working_dir": str(request.workspace), "excludes": list(EXCLUDES), "env_vars": dict(request.env)}
        return str(
            self._call(
                "submit",
                submission_id,
                lambda: self._client.submit_job(
                    entrypoint=request.entrypoint(),
                    submission_id=submission_id,
                    runtime_env=runtime_env,
                    entrypoint_num_gpus=request.gpus or None,
                    entrypoint_num_cpus=request.cpus,
                    metadata={tags.JOB: name, tags.JOB_FILE: request.job_file},
                ),
            )
        )

    def status(self, job_id: str) -> str:
        status = self._call("get the status of", job_id, lambda: self._client.get_job_status(job_id))
        return str(getattr(status, "value", status))

    def logs(self, job_id: str) -> str:
        return str(self._call("get the logs of", job_id, lambda: self._client.get_job_logs(job_id)))

    def cancel(self, job_id: str) -> bool:
        """Ask Ray to stop the job: SIGTERM first, so the recipe saves a checkpoint (``--resume`` continues)."""
        return bool(self._call("stop", job_id, lambda: self._client.stop_job(job_id)))

    def wait(self, job_id: str, *, timeout_s: float, poll_s: float = 2.0) -> str:
        """Poll until the job reaches a terminal state; return it (LaunchError when time runs out)."""
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.status(job_id)
            if state in TERMINAL_STATES:
                return state
            if time.monotonic() > deadline:
                raise LaunchError(f"job {job_id} still {state} after {timeout_s:.0f} s on {self.address}")
            time.sleep(poll_s)
