"""Shared set-up of the fine-tuning integration tests (no tests here).

A git workspace holding the example job and a slice of its data, with the support-triage prompt pushed
to the session's MLflow server under a unique name, and the job pointed at the session's tiny model.
Names carry a random suffix so tests sharing one server never collide.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from llmops.config.workspace import Workspace, load_workspace
from llmops.gitinfo import file_info
from llmops.prompts.registry import PromptRegistry
from llmops.prompts.spec import load_spec
from llmops.registry.tracking import connect
from tests.conftest import REPO, MlflowServer, git

TRAIN_ROWS = 64
EVAL_ROWS = 16


@dataclass
class FinetuneWorkspace:
    root: Path
    suffix: str
    env: dict[str, str]
    prompt_ref: str
    model_path: Path
    jobs: dict[str, Path] = field(default_factory=dict)

    @property
    def ws(self) -> Workspace:
        return load_workspace(self.root, env=self.env)

    def adapter(self, job: str) -> str:
        return f"{job}-lora-{self.suffix}"

    def write_job(self, job: str, *, commit: bool = True, **overrides: object) -> Path:
        """``finetune/JOB.yaml``: the example job on the tiny model and the pushed prompt, plus ``overrides``
        (``training`` merges into the example's training settings)."""
        data = yaml.safe_load((REPO / "finetune" / "support-triage.yaml").read_text())
        data.update(
            base_model=str(self.model_path),
            prompt=self.prompt_ref,
            adapter=self.adapter(job),
            train="finetune/data/support-triage/train.jsonl",
            eval="finetune/data/support-triage/eval.jsonl",
        )
        training = {**data["training"], "batch_size": 4, "max_seq_len": 384, "save_steps": 2, "eval_steps": None}
        training.update(overrides.pop("training", {}))  # type: ignore[call-overload]
        data.update(training=training, **overrides)
        path = self.root / "finetune" / f"{job}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        if commit:
            git(self.root, "add", "-A")
            git(self.root, "commit", "-q", "-m", f"job {job}")
        self.jobs[job] = path
        return path

    def write_data(self, rel: str, rows: list[object]) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
        return path


def make_workspace(root: Path, server: MlflowServer, model_path: Path) -> FinetuneWorkspace:
    """Workspace files, a git commit, and the prompt pushed as version 1 of a uniquely named prompt."""
    suffix = uuid.uuid4().hex[:8]
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "llmops.yaml", root / "llmops.yaml")
    (root / "prompts").mkdir()
    prompt_name = f"support-triage-{suffix}"
    text = (REPO / "prompts" / "support-triage.yaml").read_text()
    prompt_path = root / "prompts" / f"{prompt_name}.yaml"
    prompt_path.write_text(text.replace("name: support-triage\n", f"name: {prompt_name}\n"))
    data = root / "finetune" / "data" / "support-triage"
    data.mkdir(parents=True)
    for split, rows in (("train", TRAIN_ROWS), ("eval", EVAL_ROWS), ("test", EVAL_ROWS)):
        lines = (REPO / "finetune" / "data" / "support-triage" / f"{split}.jsonl").read_text().splitlines()
        (data / f"{split}.jsonl").write_text("\n".join(lines[:rows]) + "\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "workspace")
    env = {"MLFLOW_TRACKING_URI": server.url, "HF_HUB_OFFLINE": "1", "LLMOPS_ACTOR": "test"}
    ws = load_workspace(root, env=env)
    pushed = PromptRegistry(connect(ws), ws).push(load_spec(prompt_path), file_info(prompt_path))
    assert pushed.version == 1
    return FinetuneWorkspace(root, suffix, env, f"{prompt_name}/1", model_path)
