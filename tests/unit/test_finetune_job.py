"""The job spec: schema errors with file/line/field, data files checked, wired into `llmops validate`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmops.cli.main import app
from llmops.errors import ValidationFailed
from llmops.finetune.job import LLAMA_LINEAR, FinetuneJob, check_job_file, file_sha256, job_name, load_job
from llmops.validate import validate_workspace

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.mark.parametrize("name", ["support-triage", "support-triage-skewed"])
def test_example_jobs_are_valid(name: str) -> None:
    path = REPO / "finetune" / f"{name}.yaml"
    job, problems = check_job_file(path, REPO, display=f"finetune/{name}.yaml")
    assert problems == [] and job is not None
    assert job.adapter == f"{name}-lora" and job.base_model == "reference"
    assert job.prompt == "support-triage@production"
    assert job.lora.target_modules == list(LLAMA_LINEAR) and job.lora.r == 16
    assert job.training.precision == "auto" and job.resources.gpus == 0
    assert job_name(path) == name
    assert len(file_sha256(path)) == 64
    assert set(job.data_paths(REPO)) == {"train", "eval"}


def test_defaults_and_flat_params() -> None:
    job = FinetuneJob.model_validate({"train": "d.jsonl", "adapter": "a"})
    assert job.base_model == "reference" and job.training.packing and job.training.seed == 0
    params = job.flat_params()
    assert params["lora.r"] == "16" and params["training.lr"] == "0.001" and params["adapter"] == "a"


def test_schema_problems_are_reported_together_with_lines(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "base_model: reference\n"
        "train: d.jsonl\n"
        "adapter: Bad_Name\n"
        "prompt: 'not a ref!'\n"
        "lora:\n"
        "  r: 0\n"
        "  rank: 8\n"
        "training:\n"
        "  max_steps: 10\n"
        "  epochs: 2\n"
        "resources: {gpus: -1}\n"
        "init_adapter: 'two@aliases@here'\n"
    )
    with pytest.raises(ValidationFailed) as info:
        load_job(path, display="finetune/bad.yaml")
    text = str(info.value)
    assert "finetune/bad.yaml:3 [adapter]" in text
    assert "finetune/bad.yaml:4 [prompt]" in text
    assert "finetune/bad.yaml:6 [lora.r]" in text
    assert "finetune/bad.yaml:7 [lora.rank]: unknown field" in text
    assert "finetune/bad.yaml:8 [training]" in text and "set max_steps or epochs, not both" in text
    assert "finetune/bad.yaml:11 [resources.gpus]" in text
    assert "finetune/bad.yaml:12 [init_adapter]" in text and "NAME@alias or NAME/VERSION" in text
    path.write_text("train: d.jsonl\nadapter: a\ntraining:\n  precision: fp16\n")
    with pytest.raises(
        ValidationFailed, match=r"bad.yaml:4 \[training.precision\]: Input should be 'auto', 'fp32' or 'bf16'"
    ):
        load_job(path, display="finetune/bad.yaml")


def test_missing_data_files_are_problems_too(tmp_path: Path) -> None:
    path = tmp_path / "finetune" / "j.yaml"
    path.parent.mkdir()
    path.write_text("train: finetune/data/nope.jsonl\neval: finetune/data/also-nope.jsonl\ntest: t.jsonl\nadapter: j\n")
    job, problems = check_job_file(path, tmp_path, display="finetune/j.yaml")
    assert job is not None
    assert [str(p).split(": data file")[0] for p in problems] == [
        "finetune/j.yaml:1 [train]",
        "finetune/j.yaml:2 [eval]",
        "finetune/j.yaml:3 [test]",
    ]


def test_validate_checks_jobs_but_not_the_data_folder(tmp_path: Path) -> None:
    shutil.copy(REPO / "llmops.yaml", tmp_path / "llmops.yaml")
    shutil.copytree(REPO / "finetune", tmp_path / "finetune", ignore=shutil.ignore_patterns("*.jsonl"))
    (tmp_path / "finetune" / "data" / "notes.yaml").write_text("not: [a, job\n")  # data/ is not checked
    (tmp_path / "finetune" / "broken.yaml").write_text("train: x.jsonl\nadapter: ok\nlora: {alpha: 0}\n")
    checked, problems = validate_workspace(tmp_path)
    shown = sorted(str(p) for p in problems)
    assert any(s.startswith("finetune/broken.yaml:3 [lora.alpha]") for s in shown), shown
    assert any(s.startswith("finetune/broken.yaml:1 [train]: data file not found") is False for s in shown)
    assert any("finetune/support-triage.yaml:" in s and "[train]" in s for s in shown)  # data stripped above
    assert not any("notes.yaml" in s for s in shown)
    assert checked >= 3


def test_finetune_help_has_examples() -> None:
    for command in ("run", "launch", "status", "logs", "cancel", "score"):
        result = runner.invoke(app, ["finetune", command, "--help"])
        assert result.exit_code == 0 and "Example:" in result.output, command
    for command in ("list", "show"):
        result = runner.invoke(app, ["adapters", command, "--help"])
        assert result.exit_code == 0 and "Example:" in result.output, command
