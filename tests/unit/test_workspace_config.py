from __future__ import annotations

from pathlib import Path

import pytest

from llmops.config.workspace import load_workspace
from llmops.errors import ValidationFailed


def test_defaults_put_registry_and_artifacts_under_dot_llmops(tmp_path: Path) -> None:
    ws = load_workspace(tmp_path, env={})
    assert ws.tracking_uri == f"sqlite:///{tmp_path.resolve() / '.llmops' / 'mlflow.db'}"
    assert ws.artifact_root == tmp_path.resolve() / ".llmops" / "artifacts"
    assert ws.is_embedded_registry


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    (tmp_path / "llmops.yaml").write_text("registry:\n  tracking_uri: http://10.0.0.1:5000\n")
    assert load_workspace(tmp_path, env={}).tracking_uri == "http://10.0.0.1:5000"
    ws = load_workspace(tmp_path, env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:9999"})
    assert ws.tracking_uri == "http://127.0.0.1:9999"
    assert not ws.is_embedded_registry


def test_relative_sqlite_uri_is_relative_to_the_workspace(tmp_path: Path) -> None:
    (tmp_path / "llmops.yaml").write_text("registry:\n  tracking_uri: sqlite:///state/reg.db\n")
    assert load_workspace(tmp_path, env={}).tracking_uri == f"sqlite:///{tmp_path.resolve()}/state/reg.db"


def test_unknown_fields_are_reported_with_line(tmp_path: Path) -> None:
    (tmp_path / "llmops.yaml").write_text("version: 1\nregistry:\n  trackinguri: x\n")
    with pytest.raises(ValidationFailed) as info:
        load_workspace(tmp_path, env={})
    problem = info.value.problems[0]
    assert (problem.file, problem.line, problem.field) == ("llmops.yaml", 3, "registry.trackinguri")


def test_workspace_is_found_upward(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "llmops.yaml").write_text("version: 1\n")
    (tmp_path / "prompts" / "deep").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "prompts" / "deep")
    assert load_workspace(env={}).root == tmp_path.resolve()
