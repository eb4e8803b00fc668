"""Eval cases: a JSONL file, one case a line, checked completely before anything is scored."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson
from pydantic import AliasChoices, ConfigDict, Field, ValidationError, model_validator

from llmops.config.base import StrictModel
from llmops.errors import Problem, ValidationFailed


class ChatMessage(StrictModel):
    role: str = Field(pattern="^(system|user|assistant)$")
    content: str


class Case(StrictModel):
    """One case: prompt variables or messages, the reference answer, optional contexts and group attributes.

    Fine-tuning rows are valid cases as they stand: ``target`` is read as ``reference`` and ``meta`` as
    ``attributes``, so a held-out training split is an eval case file without conversion.
    """

    model_config = StrictModel.model_config | ConfigDict(populate_by_name=True)

    id: str | None = None
    variables: dict[str, Any] | None = None
    messages: list[ChatMessage] | None = None
    reference: str | None = Field(None, validation_alias=AliasChoices("reference", "target"))
    contexts: list[str] = Field(default_factory=list)
    attributes: dict[str, str] = Field(default_factory=dict, validation_alias=AliasChoices("attributes", "meta"))
    expected: dict[str, Any] | None = Field(None, description="expected JSON fields of the answer")

    @model_validator(mode="after")
    def _one_input(self) -> Case:
        if (self.variables is None) == (self.messages is None):
            raise ValueError("a case needs exactly one of 'variables' or 'messages'")
        return self

    def key(self) -> str:
        """Content hash of the case: the cache key part that identifies it."""
        return hashlib.sha256(orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)).hexdigest()


def load_cases(path: Path, *, display: str | None = None, limit: int | None = None) -> list[Case]:
    """Every case of ``path``; ValidationFailed with each bad line's number when any line is bad."""
    shown = display or str(path)
    try:
        raw_lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationFailed([Problem(shown, f"cannot read case file: {exc}")]) from exc
    cases: list[Case] = []
    problems: list[Problem] = []
    for number, line in enumerate(raw_lines, start=1):
        if not line.strip():
            continue
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            problems.append(Problem(shown, f"malformed JSON: {exc}", line=number))
            continue
        try:
            case = Case.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                field = ".".join(str(p) for p in err["loc"]) or None
                problems.append(Problem(shown, err["msg"], field=field, line=number))
            continue
        cases.append(case if case.id else case.model_copy(update={"id": f"line-{number}"}))
    if problems:
        raise ValidationFailed(problems)
    if not cases:
        raise ValidationFailed([Problem(shown, "no cases")])
    return cases[:limit] if limit else cases
