"""Prompt files in the workspace: discover, load, and check completely (schema + templates)."""

from __future__ import annotations

from pathlib import Path

from llmops.config.yamlio import LineIndex, check_model_file, line_of
from llmops.errors import Problem, ValidationFailed
from llmops.prompts.sandbox import check_template
from llmops.prompts.spec import PromptSpec


def discover(prompts_dir: Path) -> list[Path]:
    """Every ``*.yaml``/``*.yml`` file under ``prompts_dir``, sorted."""
    if not prompts_dir.is_dir():
        return []
    return sorted(p for p in prompts_dir.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def template_problems(spec: PromptSpec, file: str, lines: LineIndex) -> list[Problem]:
    """Problems in the spec's templates, with the line of the YAML file where each sits."""
    problems = []
    declared = set(spec.variables)
    for i, message in enumerate(spec.messages):
        loc: tuple[str | int, ...] = ("messages", i, "content")
        base = line_of(lines, loc)
        for issue in check_template(message.content, declared):
            line = base
            if base is not None and issue.line is not None and "\n" in message.content:
                line = base + issue.line  # block scalar: text starts on the line after the key
            problems.append(Problem(file, issue.message, field=".".join(map(str, loc)), line=line))
    return problems


def check_file(path: Path, *, display: str | None = None) -> tuple[PromptSpec | None, list[Problem]]:
    """Load one prompt file and return the spec (when the schema holds) and every problem found."""
    shown = display or str(path)
    spec, problems, lines = check_model_file(PromptSpec, path, display=shown)
    if spec is None:
        return None, problems
    problems = template_problems(spec, shown, lines)
    stem = path.stem
    if spec.name != stem:
        problems.append(
            Problem(shown, f"name {spec.name!r} differs from the file name {stem!r}", "name", line_of(lines, ("name",)))
        )
    return spec, problems


def load_checked(path: Path, *, display: str | None = None) -> PromptSpec:
    """Load one prompt file, raising ValidationFailed with every problem when it is not clean."""
    spec, problems = check_file(path, display=display)
    if problems:
        raise ValidationFailed(problems)
    assert spec is not None
    return spec
