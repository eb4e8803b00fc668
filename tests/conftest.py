"""Shared fixtures: a real MLflow server on loopback (session-scoped), and git workspaces."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


@pytest.fixture(autouse=True)
def _restore_environment() -> Iterator[None]:
    """MLflow's ``set_tracking_uri`` also writes ``MLFLOW_TRACKING_URI`` into ``os.environ``; undo it after
    each test so a registry chosen by one test never leaks into the next (or into its subprocesses)."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@dataclass
class MlflowServer:
    url: str
    pid: int
    root: Path  # the workspace whose SQLite store it serves


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """One MLflow server for the whole session, on a free loopback port; stopped by its PID."""
    from llmops.config.workspace import load_workspace
    from llmops.process import free_port
    from llmops.registry.server import start_server

    root = tmp_path_factory.mktemp("mlflow-server")
    ws = load_workspace(root, env={})
    proc, url = start_server(ws, port=free_port(), timeout=240)
    assert proc.pid is not None
    try:
        yield MlflowServer(url=url, pid=proc.pid, root=root)
    finally:
        proc.stop()
    assert not proc.alive()


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    out = subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True)
    return out.stdout.strip()


@dataclass
class GitWorkspace:
    root: Path
    suffix: str  # appended to example prompt names so tests sharing one server do not collide

    def prompt_path(self, base: str) -> Path:
        return self.root / "prompts" / f"{base}-{self.suffix}.yaml"

    def name(self, base: str) -> str:
        return f"{base}-{self.suffix}"

    def commit(self, message: str) -> str:
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "-m", message)
        return git(self.root, "rev-parse", "HEAD")


@pytest.fixture
def git_workspace(tmp_path: Path) -> GitWorkspace:
    """A git repository holding llmops.yaml and the example prompts under unique names."""
    suffix = uuid.uuid4().hex[:8]
    root = tmp_path / "ws"
    (root / "prompts").mkdir(parents=True)
    shutil.copy(REPO / "llmops.yaml", root / "llmops.yaml")
    for src in sorted((REPO / "prompts").glob("*.yaml")):
        text = src.read_text().replace(f"name: {src.stem}\n", f"name: {src.stem}-{suffix}\n")
        (root / "prompts" / f"{src.stem}-{suffix}.yaml").write_text(text)
    git(root, "init", "-q", "-b", "main")
    ws = GitWorkspace(root, suffix)
    ws.commit("initial prompts")
    return ws
