"""Versioned datasets on a real MLflow server (over HTTP): store, pull byte for byte, refuse an altered copy,
and the inputs an eval record and a training run log."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llmops.config.workspace import Workspace, load_workspace
from llmops.finetune.lineage import TRAINING_CONTEXT, log_rows, store_splits
from llmops.finetune.rows import read_rows
from llmops.finetune.validation import check_data
from llmops.registry import connect
from llmops.registry.datasets import case_file_fingerprint

pytestmark = pytest.mark.integration

Cli = Callable[..., subprocess.CompletedProcess[str]]


def _rows(tag: str) -> bytes:
    """Unique rows (the server is shared by the session), CRLF ends and trailing spaces kept as bytes."""
    return (
        f'{{"variables": {{"message": "refund {tag}"}}, "target": "billing"}}  \r\n'
        f'{{"target": "bug", "variables": {{"message": "crash {tag}"}}}}\r\n'
    ).encode()


@pytest.fixture
def served(mlflow_server, tmp_path: Path) -> tuple[Workspace, dict[str, str]]:
    env = {"MLFLOW_TRACKING_URI": mlflow_server.url}
    root = tmp_path / "ws"
    (root / "data").mkdir(parents=True)
    return load_workspace(root, env=env), env


def test_store_pull_and_refuse_over_http(
    served: tuple[Workspace, dict[str, str]], mlflow_server: Any, tmp_path: Path, invoke_llmops: Cli
) -> None:
    ws, env = served
    raw = _rows(uuid.uuid4().hex)
    data = ws.root / "data" / "train.jsonl"
    data.write_bytes(raw)
    fingerprint = read_rows(data).fingerprint
    datasets = connect(ws).datasets

    def store() -> Any:
        return datasets.store([data], fingerprint=fingerprint, name="t-train", kind="training", rows=2,
                              source="data/train.jsonl", validation={"rows": 2, "pii": 0})  # fmt: skip

    info = store()
    assert info.artifact_uri.startswith("mlflow-artifacts:")  # served by the server, not a local path
    assert store() == info and datasets.find(fingerprint[:10]) == info
    listed = invoke_llmops("data", "list", "--kind", "training", "--json", cwd=ws.root, env=env)
    assert fingerprint in [row["fingerprint"] for row in json.loads(listed.stdout)], listed.stdout + listed.stderr

    out = tmp_path / "restored"
    pulled = invoke_llmops("data", "pull", fingerprint[:12], "-o", str(out), cwd=ws.root, env=env)
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert (out / "train.jsonl").read_bytes() == raw

    unknown = hashlib.sha256(raw + b"unknown").hexdigest()
    missing = invoke_llmops("data", "pull", unknown, "-o", str(tmp_path / "none"), cwd=ws.root, env=env)
    assert missing.returncode == 1 and f"no dataset {unknown} in {mlflow_server.url}" in missing.stderr
    assert not (tmp_path / "none").exists()

    # alter the stored copy where the server keeps it: the pull refuses it and writes nothing
    [stored] = Path(mlflow_server.root).rglob(f"{info.run_id}/artifacts/data/train.jsonl")
    stored.write_bytes(raw.replace(b"billing", b"bi11ing"))
    altered = invoke_llmops("data", "pull", fingerprint, "-o", str(tmp_path / "altered"), cwd=ws.root, env=env)
    assert altered.returncode == 1 and "altered" in altered.stderr, altered.stdout + altered.stderr
    assert not (tmp_path / "altered").exists()


def test_eval_record_and_training_run_list_their_dataset_inputs(
    served: tuple[Workspace, dict[str, str]],
    tmp_path: Path,
    invoke_llmops: Cli,
    start_fake_engine: Callable[..., tuple[Any, str]],
) -> None:
    ws, env = served
    tag = uuid.uuid4().hex
    cases = ws.root / "evals" / "cases.jsonl"
    cases.parent.mkdir()
    cases.write_text(f'{{"id": "c1", "messages": [{{"role": "user", "content": "hi {tag}"}}], "reference": "x"}}\n')
    (ws.root / "evals" / "smoke.yaml").write_text(
        "name: smoke\ncases: cases.jsonl\ntarget: {release: {}}\nmetrics: [exact_match]\n"
    )
    engine, url = start_fake_engine(tmp_path)
    try:
        done = invoke_llmops("eval", "run", "evals/smoke.yaml", "--endpoint", url, "-o", str(tmp_path / "r"),
                             cwd=ws.root, env=env)  # fmt: skip
    finally:
        engine.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    record_id = re.search(r"record: (\w+)", done.stdout).group(1)  # type: ignore[union-attr]
    registry = connect(ws)
    [case_input] = registry.datasets.inputs(record_id)
    fingerprint, rows = case_file_fingerprint(cases)
    assert (case_input.context, case_input.path, case_input.fingerprint) == ("eval-cases", "evals/cases.jsonl",
                                                                             fingerprint)  # fmt: skip
    stored = registry.datasets.get(fingerprint)
    assert stored.kind == "eval-cases" and stored.rows == rows == 1
    pulled = registry.datasets.pull(fingerprint, tmp_path / "cases")
    assert pulled[0].read_bytes() == cases.read_bytes()

    # a training run: its train and eval files stored, then logged with context, rows and validation counts
    train, held_out = ws.root / "data" / "train.jsonl", ws.root / "data" / "eval.jsonl"
    train.write_bytes(_rows(tag))
    held_out.write_bytes(_rows(tag + "-held-out"))
    train_rows, eval_rows = read_rows(train, display="data/train.jsonl"), read_rows(held_out, display="data/eval.jsonl")
    report = check_data(train_rows, None, eval_rows, None, max_seq_len=512)
    splits = store_splits(registry.datasets, "job", train_rows, eval_rows, report)
    run = registry.runs.start("llmops-finetune", "job", {})
    log_rows(registry.datasets, run, splits)
    found = {i.context: i for i in registry.datasets.inputs(run.run_id)}
    assert set(found) == {TRAINING_CONTEXT, "eval"}
    assert found[TRAINING_CONTEXT].fingerprint == train_rows.fingerprint and found[TRAINING_CONTEXT].rows == 2
    assert found[TRAINING_CONTEXT].name == "job-train" and found[TRAINING_CONTEXT].path == "data/train.jsonl"
    assert found[TRAINING_CONTEXT].validation["rows"] == 2 and found[TRAINING_CONTEXT].validation["pii"] == 0
    assert registry.datasets.get(eval_rows.fingerprint).kind == "eval"
