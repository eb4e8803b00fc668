"""Every YAML file committed in the example workspace validates (schema, templates, references)."""

from __future__ import annotations

from pathlib import Path

from llmops.validate import validate_workspace

REPO = Path(__file__).resolve().parents[2]


def test_the_example_workspace_is_valid() -> None:
    checked, problems = validate_workspace(REPO)
    assert problems == []
    assert checked >= 5  # llmops.yaml, 2 prompts, finetune jobs, gateway, eval suite
