"""Load an eval suite file completely: schema, cross-field consistency and the case file, all errors at once."""

from __future__ import annotations

from pathlib import Path

from llmops.config.yamlio import check_model_file, line_of
from llmops.errors import Problem, ValidationFailed
from llmops.evals.cases import Case, load_cases
from llmops.evals.spec import EvalSuite, cases_path


def check_suite_file(path: Path, display: str | None = None) -> tuple[EvalSuite | None, list[Problem]]:
    """The suite (when its schema holds) and every problem found, each with file, line and field."""
    shown = display or str(path)
    suite, problems, lines = check_model_file(EvalSuite, path, display=shown)
    if suite is None:
        return None, problems
    problems = [
        Problem(shown, msg, field=".".join(map(str, loc)), line=line_of(lines, loc))
        for loc, msg in suite.consistency_problems()
    ]
    cases_file = cases_path(path, suite)
    if not cases_file.is_file():
        problems.append(
            Problem(shown, f"case file {suite.cases} not found", field="cases", line=line_of(lines, ("cases",)))
        )
    else:
        try:
            load_cases(
                cases_file,
                display=str(cases_file.relative_to(path.parent.parent))
                if cases_file.is_relative_to(path.parent.parent)
                else str(cases_file),
            )
        except ValidationFailed as exc:
            problems.extend(exc.problems)
    return suite, problems


def load_suite(path: Path, *, limit: int | None = None) -> tuple[EvalSuite, list[Case], bytes]:
    """The suite, its cases and the case file's bytes (for the suite hash); ValidationFailed on any problem."""
    suite, problems = check_suite_file(path)
    if problems:
        raise ValidationFailed(problems)
    assert suite is not None
    file = cases_path(path, suite)
    return suite, load_cases(file, limit=limit), file.read_bytes()
