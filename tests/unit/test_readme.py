"""README.md stays true: every configuration example validates against the schema it documents."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from llmops.config.gateway import GatewayFile
from llmops.evals.spec import EvalSuite
from llmops.finetune.job import FinetuneJob
from llmops.prompts.spec import PromptSpec

README = Path(__file__).resolve().parents[2] / "README.md"
SCHEMAS: dict[str, type[BaseModel]] = {
    "### Prompt spec": PromptSpec,
    "### Fine-tune job": FinetuneJob,
    "### Gateway": GatewayFile,
    "### Eval suite": EvalSuite,
}


def _yaml_after(heading: str) -> str:
    text = README.read_text()
    start = text.index(heading)
    match = re.compile(r"```yaml\n(.*?)```", re.S).search(text, start)
    assert match is not None, f"no yaml block after {heading!r}"
    return match.group(1)


@pytest.mark.parametrize("heading", list(SCHEMAS))
def test_configuration_examples_validate(heading: str) -> None:
    data = yaml.safe_load(_yaml_after(heading))
    SCHEMAS[heading].model_validate(data)
