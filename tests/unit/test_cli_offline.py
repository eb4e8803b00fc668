"""CLI behaviour that needs no registry: help, init, validate, local render, error display."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from llmops.cli.main import app

runner = CliRunner()


def test_help_teaches_the_everyday_jobs() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for word in ("prompts", "registry", "models", "validate", "doctor", "audit", "init"):
        assert word in result.output
    sub = runner.invoke(app, ["prompts", "push", "--help"])
    assert "--dry-run" in sub.output and "Example:" in sub.output


def test_init_scaffolds_a_workspace_that_validates(tmp_path: Path) -> None:
    target = tmp_path / "my-app"
    result = runner.invoke(app, ["init", str(target)])
    assert result.exit_code == 0, result.output
    for rel in ("llmops.yaml", "prompts/greeting.yaml", "finetune", "serving", "evals"):
        assert (target / rel).exists(), rel
    ok = runner.invoke(app, ["validate", "--workspace", str(target)])
    assert ok.exit_code == 0, ok.output
    again = runner.invoke(app, ["init", str(target)])
    assert "kept" in again.output  # never overwrites unasked


def test_validate_reports_every_problem_at_once(tmp_path: Path) -> None:
    runner.invoke(app, ["init", str(tmp_path)])
    (tmp_path / "llmops.yaml").write_text("version: 1\nregistri: {}\n")
    (tmp_path / "prompts" / "greeting.yaml").write_text(
        (tmp_path / "prompts" / "greeting.yaml").read_text().replace("role: system", "role: robot")
    )
    (tmp_path / "prompts" / "Bad.yaml").write_text("name: Bad\nmessages: []\n")
    (tmp_path / "evals" / "broken.yaml").write_text("a: [\n")
    result = runner.invoke(app, ["validate", "--workspace", str(tmp_path)])
    assert result.exit_code == 2
    out = result.output
    assert "llmops.yaml:2 [registri]: unknown field" in out
    assert "prompts/greeting.yaml:" in out and "[messages.0.role]" in out
    assert "prompts/Bad.yaml:1 [name]" in out
    assert "evals/broken.yaml" in out and "malformed YAML" in out


def test_render_a_local_file_without_registry(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    result = runner.invoke(
        app,
        ["prompts", "render", str(repo / "prompts" / "support-triage.yaml"), "--var", "message={{7*7}}"],
    )
    assert result.exit_code == 0, result.output
    assert "{{7*7}}" in result.output and "49" not in result.output


def test_missing_variable_is_a_clear_error(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    result = runner.invoke(app, ["prompts", "render", str(repo / "prompts" / "support-triage.yaml")])
    assert result.exit_code == 2
    assert "missing required variable 'message'" in result.output


def test_invalid_reference_names_the_rule(tmp_path: Path) -> None:
    result = runner.invoke(app, ["prompts", "show", "Not/A/Name", "--workspace", str(tmp_path)])
    assert result.exit_code == 2
    assert "invalid" in result.output


def test_prompts_validate_takes_files_and_folders(tmp_path: Path) -> None:
    runner.invoke(app, ["init", str(tmp_path)])
    folder = runner.invoke(app, ["prompts", "validate", str(tmp_path / "prompts"), "--workspace", str(tmp_path)])
    assert folder.exit_code == 0, folder.output
    assert "1 prompt file(s) valid" in folder.output
    empty = tmp_path / "empty"
    empty.mkdir()
    none = runner.invoke(app, ["prompts", "validate", str(empty), "--workspace", str(tmp_path)])
    assert none.exit_code == 2 and "no prompt files found" in " ".join(none.output.split())
