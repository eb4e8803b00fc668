"""Versioned datasets in an embedded (SQLite) registry: store, find, pull byte for byte, refuse what was altered."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow import MlflowClient

from llmops.config.workspace import Workspace, load_workspace
from llmops.errors import IntegrityError, LlmopsError, NotFoundError, RegistryError
from llmops.finetune.rows import read_rows
from llmops.registry import connect, tags
from llmops.registry.datasets import DATASETS_EXPERIMENT, DatasetInfo, case_file_fingerprint

Cli = Callable[..., subprocess.CompletedProcess[str]]
#: CRLF line ends, trailing spaces, a blank line, unsorted keys: all kept byte for byte
RAW = (
    b'{"target": "billing", "variables": {"message": "refund please"}}  \r\n'
    b"\r\n"
    b'{"variables":{"message":"app crashes"},"target":"bug"}\r\n'
)


def _ws(root: Path) -> Workspace:
    return load_workspace(root, env={})


def _store(ws: Workspace, data: Path, *, kind: str = "training") -> DatasetInfo:
    fingerprint = read_rows(data).fingerprint
    return connect(ws).datasets.store(
        [data], fingerprint=fingerprint, name="triage-train", kind=kind, rows=2, source=ws.shown(data),
        validation={"rows": 2, "pii": 0, "duplicate": 0},
    )  # fmt: skip


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Workspace, Path, DatasetInfo]:
    ws = _ws(tmp_path / "ws")
    data = ws.root / "data" / "train.jsonl"
    data.parent.mkdir(parents=True)
    data.write_bytes(RAW)
    return ws, data, _store(ws, data)


def _stored_file(info: DatasetInfo, name: str) -> Path:
    return Path(info.artifact_uri.removeprefix("file://")) / "data" / name


def test_store_find_by_prefix_and_pull_restores_the_exact_bytes(
    stored: tuple[Workspace, Path, DatasetInfo], tmp_path: Path
) -> None:
    ws, data, info = stored
    registry = connect(ws)
    assert info.fingerprint == read_rows(data).fingerprint and info.kind == "training" and info.rows == 2
    assert info.source == "data/train.jsonl" and info.validation == {"rows": 2, "pii": 0, "duplicate": 0}
    assert [(f.name, f.sha256, f.bytes) for f in info.files] == [
        ("train.jsonl", hashlib.sha256(RAW).hexdigest(), len(RAW))
    ]
    assert registry.datasets.find(info.fingerprint[:8]) == info == registry.datasets.get(info.fingerprint.upper())
    written = registry.datasets.pull(info.fingerprint[:12], tmp_path / "restored")
    assert written == [tmp_path / "restored" / "train.jsonl"]
    assert written[0].read_bytes() == RAW  # bytes, not re-serialised rows
    # the same rows reformatted have the same fingerprint: storing again reuses the first copy
    other = ws.root / "copy" / "train.jsonl"
    other.parent.mkdir()
    other.write_bytes(RAW.replace(b"\r\n", b"\n").replace(b"  ", b""))
    again = _store(ws, other)
    assert again == info
    assert [i.fingerprint for i in registry.datasets.list()] == [info.fingerprint]
    assert registry.datasets.list("eval") == [] and registry.datasets.list("training") == [info]


def test_tampered_artifact_is_refused_and_nothing_is_written(
    stored: tuple[Workspace, Path, DatasetInfo], tmp_path: Path, invoke_llmops: Cli
) -> None:
    ws, _, info = stored
    _stored_file(info, "train.jsonl").write_bytes(RAW.replace(b"billing", b"bi11ing"))
    out = tmp_path / "restored"
    with pytest.raises(IntegrityError, match="train.jsonl"):
        connect(ws).datasets.pull(info.fingerprint, out)
    assert not out.exists()
    done = invoke_llmops("data", "pull", info.fingerprint[:12], "-o", str(out), "-w", str(ws.root), cwd=ws.root)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "altered" in done.stderr and "nothing written" in done.stderr
    assert not out.exists()


def test_unknown_fingerprint_exits_1_naming_it_and_writes_nothing(
    stored: tuple[Workspace, Path, DatasetInfo], tmp_path: Path, invoke_llmops: Cli
) -> None:
    ws, _, info = stored
    unknown = "0" * 64 if not info.fingerprint.startswith("0") else "f" * 64
    with pytest.raises(NotFoundError, match=f"no dataset {unknown} in"):
        connect(ws).datasets.get(unknown)
    out = tmp_path / "restored"
    for command in (("pull", unknown[:12], "-o", str(out)), ("show", unknown)):
        done = invoke_llmops("data", *command, "-w", str(ws.root), cwd=ws.root)
        assert done.returncode == 1, done.stdout + done.stderr
        assert f"no dataset {unknown[:12] if command[0] == 'pull' else unknown} in sqlite:" in done.stderr
    assert not out.exists()
    with pytest.raises(LlmopsError, match="not a dataset fingerprint"):
        connect(ws).datasets.find("abc")


def test_pull_refuses_a_different_existing_file_unless_forced(
    stored: tuple[Workspace, Path, DatasetInfo], tmp_path: Path, invoke_llmops: Cli
) -> None:
    ws, _, info = stored
    out = tmp_path / "restored"
    out.mkdir()
    (out / "train.jsonl").write_text("mine\n")
    args = ("data", "pull", info.fingerprint[:12], "-o", str(out), "-w", str(ws.root))
    done = invoke_llmops(*args, cwd=ws.root)
    assert done.returncode != 0 and "train.jsonl exists and differs" in done.stderr, done.stderr
    assert (out / "train.jsonl").read_text() == "mine\n"
    done = invoke_llmops(*args, "--force", cwd=ws.root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (out / "train.jsonl").read_bytes() == RAW
    assert invoke_llmops(*args, cwd=ws.root).returncode == 0  # the same file already there: fine


def test_cli_list_and_show_every_field_and_the_adapters_trained_on_it(
    stored: tuple[Workspace, Path, DatasetInfo], invoke_llmops: Cli
) -> None:
    ws, _, info = stored
    client = MlflowClient(tracking_uri=ws.tracking_uri, registry_uri=ws.tracking_uri)
    client.create_registered_model("triage-lora")
    client.create_model_version("triage-lora", "file:///nowhere", tags={tags.DATASET_FINGERPRINT: info.fingerprint})
    client.create_model_version("triage-lora", "file:///nowhere", tags={tags.DATASET_FINGERPRINT: "1" * 64})
    done = invoke_llmops("data", "list", "--json", "-w", str(ws.root), cwd=ws.root)
    assert done.returncode == 0, done.stdout + done.stderr
    [row] = json.loads(done.stdout)
    assert row["fingerprint"] == info.fingerprint and row["kind"] == "training" and row["rows"] == 2
    assert row["files"] == [{"name": "train.jsonl", "sha256": hashlib.sha256(RAW).hexdigest(), "bytes": len(RAW)}]
    table = invoke_llmops("data", "list", "--kind", "training", "-w", str(ws.root), cwd=ws.root).stdout
    assert info.fingerprint[:12] in table and "triage-train" in table and "data/train.jsonl" in table
    assert "no datasets stored of kind eval" in invoke_llmops("data", "list", "--kind", "eval", "-w", str(ws.root),
                                                               cwd=ws.root).stdout  # fmt: skip
    done = invoke_llmops("data", "show", info.fingerprint[:10], "--json", "-w", str(ws.root), cwd=ws.root)
    shown = json.loads(done.stdout)
    assert shown["adapter_versions"] == ["triage-lora/1"]
    assert shown["validation"] == {"rows": 2, "pii": 0, "duplicate": 0} and shown["source"] == "data/train.jsonl"
    assert shown["run_id"] == info.run_id and shown["created"].endswith("Z")
    text = invoke_llmops("data", "show", info.fingerprint, "-w", str(ws.root), cwd=ws.root).stdout
    assert hashlib.sha256(RAW).hexdigest() in text and "triage-lora/1" in text and "pii 0" in text


def test_runs_that_did_not_finish_are_ignored_and_the_oldest_finished_copy_wins(
    stored: tuple[Workspace, Path, DatasetInfo],
) -> None:
    ws, data, info = stored
    client = MlflowClient(tracking_uri=ws.tracking_uri)
    experiment = client.get_experiment_by_name(DATASETS_EXPERIMENT).experiment_id
    half = {tags.KIND: tags.KIND_DATASET, tags.SHA256: "2" * 64, tags.DATASET_FILES: "[]"}
    client.create_run(experiment, tags=half)  # died midway: still RUNNING
    failed = client.create_run(experiment, tags=half)
    client.set_terminated(failed.info.run_id, "FAILED")
    registry = connect(ws)
    assert registry.datasets.find("2" * 64) is None and registry.datasets.find("2" * 8) is None
    # a later concurrent copy of the same fingerprint: readers keep taking the first one
    late = client.create_run(experiment, tags={**half, tags.SHA256: info.fingerprint})
    client.set_terminated(late.info.run_id, "FINISHED")
    assert registry.datasets.find(info.fingerprint) == info
    assert [i.run_id for i in registry.datasets.list()] == [info.run_id]
    assert _store(ws, data).run_id == info.run_id


def test_a_store_that_fails_raises_registry_error_and_leaves_no_dataset(tmp_path: Path) -> None:
    ws = _ws(tmp_path / "ws")
    data = ws.root / "train.jsonl"
    ws.root.mkdir(parents=True)
    data.write_bytes(RAW)
    ws.artifact_root.mkdir(parents=True, exist_ok=True)
    (ws.artifact_root / DATASETS_EXPERIMENT).write_text("a file where the artifact folder should be")
    with pytest.raises(RegistryError, match="cannot store dataset triage-train"):
        _store(ws, data)
    assert connect(ws).datasets.list() == []


def test_run_inputs_carry_context_path_rows_and_validation(stored: tuple[Workspace, Path, DatasetInfo]) -> None:
    ws, _, info = stored
    registry = connect(ws)
    run = registry.runs.start("llmops-finetune", "job", {})
    assert registry.datasets.inputs(run.run_id) == []
    registry.datasets.log_input(run.run_id, info, context="training", name="triage-train")
    [found] = registry.datasets.inputs(run.run_id)
    assert (found.context, found.name, found.path, found.fingerprint) == (
        "training",
        "triage-train",
        "data/train.jsonl",
        info.fingerprint,
    )
    assert found.rows == 2 and found.validation == info.validation
    assert registry.datasets.inputs("0" * 32) == []


def test_case_file_fingerprint_is_the_rows_fingerprint_when_lines_are_rows(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_bytes(RAW)
    assert case_file_fingerprint(rows) == (read_rows(rows).fingerprint, 2)
    text = tmp_path / "cases.jsonl"
    text.write_bytes(b'{"id": "a", "variables": {"m": "x"}, "reference": "y"}\n[1, 2]\n')
    assert case_file_fingerprint(text) == (hashlib.sha256(text.read_bytes()).hexdigest(), 2)
