"""The state of one job in this workspace: ``<home>/finetune/NAME/``.

It holds the job's checkpoints, a ``state.json`` (the MLflow run id and the hashes the run started
with) and a lock file, so that:

* two processes never train the same job of one workspace at once;
* ``--resume`` knows which run to reopen, and refuses when the job file, the data, the base model or
  the prompt version changed since (a resumed run must be the *same* run);
* the partial checkpoints a kill left behind are dropped before resuming.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from filelock import FileLock

from llmops.config.workspace import Workspace
from llmops.errors import FinetuneError
from llmops.finetune.checkpoints import latest_complete, prune

#: hashes a resumed run must share with the interrupted one
RESUME_KEYS = ("job_spec_sha256", "dataset_fingerprint", "base_model_sha256", "prompt_version", "init_adapter")


class JobState:
    """``<home>/finetune/NAME/``: checkpoints, ``state.json`` and the lock of one job."""

    def __init__(self, ws: Workspace, name: str) -> None:
        self.folder = ws.home / "finetune" / name
        self.checkpoints = self.folder / "checkpoints"
        self.file = self.folder / "state.json"

    def lock(self) -> FileLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.folder / ".lock"), timeout=0)

    def load(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as exc:
            raise FinetuneError(f"cannot read {self.file}: {exc}") from exc
        return data if isinstance(data, dict) else None

    def save(self, data: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, self.file)

    def clear_checkpoints(self) -> None:
        shutil.rmtree(self.checkpoints, ignore_errors=True)

    def resume_point(
        self, current: dict[str, str], *, prune_partial: bool = True
    ) -> tuple[dict[str, Any], Path | None]:
        """The interrupted run's state and the checkpoint to continue from (None: from the start).

        Raises FinetuneError when there is nothing to resume or an input changed since.
        """
        name = self.folder.name
        previous = self.load()
        if previous is None or previous.get("status") == "registered":
            raise FinetuneError(f"job {name}: nothing to resume (no interrupted run); run it without --resume")
        for key in RESUME_KEYS:
            if previous.get(key, "") != current[key]:
                raise FinetuneError(
                    f"job {name}: cannot resume, {key} changed since the interrupted run "
                    f"({str(previous.get(key))[:16]!r} -> {current[key][:16]!r}); run it without --resume to start over"
                )
        checkpoint = latest_complete(self.checkpoints)
        if prune_partial and checkpoint is not None:
            prune(self.checkpoints, keep=checkpoint)  # partial checkpoints of the killed attempt go
        elif prune_partial:
            self.clear_checkpoints()
        return previous, checkpoint
