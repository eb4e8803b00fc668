"""Where a fine-tune job runs: here (:class:`LocalLauncher`) or on a Ray cluster (``ray_launcher``).

Both take the same :class:`LaunchRequest` and both end in the same code path: the job's entrypoint is
``python -m llmops finetune run JOB.yaml …``, exactly what ``llmops finetune run`` does here, so a job
that trains locally trains the same way on a cluster (``torchrun`` wraps it for several GPUs).

Why ``python -m llmops`` and not the ``llmops`` console script: a Ray job's shell may not have the
virtual environment's ``bin/`` on its PATH, while ``python -m`` only needs the package importable.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from llmops.config.workspace import Workspace
from llmops.events import SILENT, Reporter
from llmops.finetune.runner import RunOptions, RunOutcome, run_job

#: Ray job states after which nothing changes any more
TERMINAL_STATES = ("SUCCEEDED", "FAILED", "STOPPED")


@dataclass(frozen=True)
class LaunchRequest:
    """One job to run: the workspace, the job file (relative to it) and the run options."""

    workspace: Path
    job_file: str
    options: RunOptions = RunOptions()
    gpus: int = 0
    cpus: float | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    python: str = "python"

    def argv(self) -> list[str]:
        """The entrypoint: the same ``run`` command as a local run, under torchrun for several GPUs."""
        run = ["-m", "llmops", "finetune", "run", self.job_file]
        if self.options.resume:
            run.append("--resume")
        if self.options.allow_warnings:
            run.append("--allow-warnings")
        if self.options.max_steps is not None:
            run += ["--max-steps", str(self.options.max_steps)]
        if self.options.base_model is not None:
            run += ["--base-model", self.options.base_model]
        if self.gpus > 1:
            return [self.python, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={self.gpus}", *run]
        return [self.python, *run]

    def entrypoint(self) -> str:
        return shlex.join(self.argv())


class Launcher(Protocol):
    """Runs a :class:`LaunchRequest` somewhere; returns an id to follow it by."""

    def submit(self, request: LaunchRequest) -> str: ...


class JobControl(Protocol):
    """Follow and stop submitted jobs (a cluster's job API)."""

    def status(self, job_id: str) -> str: ...

    def logs(self, job_id: str) -> str: ...

    def cancel(self, job_id: str) -> bool: ...


class LocalLauncher:
    """Trains in this process, reporting progress to ``reporter``; the id is the MLflow run id."""

    def __init__(self, ws: Workspace, reporter: Reporter = SILENT) -> None:
        self.ws = ws
        self.reporter = reporter
        self.outcome: RunOutcome | None = None

    def submit(self, request: LaunchRequest) -> str:
        self.outcome = run_job(self.ws, self.ws.root / request.job_file, request.options, self.reporter)
        return self.outcome.run_id or ""
