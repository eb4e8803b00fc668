"""The registry façade against a real MLflow server: "not found" is None, any other failure is RegistryError."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from llmops.config.workspace import load_workspace
from llmops.errors import NotFoundError, RegistryError
from llmops.process import free_port
from llmops.registry import Registry, connect
from llmops.registry.audit import AuditRecord
from llmops.release import Release

pytestmark = pytest.mark.integration


@pytest.fixture
def reg(mlflow_server, tmp_path: Path) -> Registry:  # type: ignore[no-untyped-def]
    return connect(load_workspace(tmp_path, env={"MLFLOW_TRACKING_URI": mlflow_server.url}))


def test_missing_objects_are_none_or_not_found(reg: Registry) -> None:
    name = f"absent-{uuid.uuid4().hex[:6]}"
    assert reg.adapters.find(name) is None
    assert reg.adapters.alias_version(name, "production") is None
    assert reg.prompts.find(f"{name}@production") is None
    assert reg.prompts.alias_version(name, "production") is None
    assert reg.pointers.at_stage(name, "production") is None
    with pytest.raises(NotFoundError, match=name):
        reg.adapters.get(f"{name}/1")
    with pytest.raises(NotFoundError, match=name):
        reg.resolve(Release.of("reference", None, f"{name}/1"))


def test_an_unreachable_registry_is_a_failure_not_a_missing_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(RegistryError, match="unreachable"):
        connect(load_workspace(tmp_path, env={"MLFLOW_TRACKING_URI": uri}))
    down = connect(load_workspace(tmp_path, env={"MLFLOW_TRACKING_URI": uri}), check=False)
    for lookup in (
        lambda: down.adapters.alias_version("triage-lora", "production"),
        lambda: down.prompts.alias_version("support-triage", "production"),
        lambda: down.pointers.at_stage("support-triage", "production"),
        lambda: down.adapters.find("triage-lora/1"),
        lambda: down.audit.records("support-triage"),
    ):
        with pytest.raises(RegistryError) as caught:
            lookup()
        assert not isinstance(caught.value, NotFoundError)
        assert uri in str(caught.value)


def test_pointer_history_lists_completed_moves_newest_first(reg: Registry) -> None:
    route = f"route-{uuid.uuid4().hex[:6]}"
    start = int(time.time() * 1000)
    moves_made = (("pending", None, "1"), ("moved", None, "1"), ("moved", "1", "2"), ("restored", "2", "3"))
    for i, (outcome, old, new) in enumerate(moves_made):
        record = AuditRecord("release", route, "production", old, new, "test", outcome=outcome, timestamp_ms=start + i)
        reg.audit.append(record)
    moves = reg.pointers.history(route, "production")
    assert [(m.from_version, m.to_version) for m in moves] == [(1, 2), (None, 1)]
