"""Dataset rows: read JSONL, check each row's shape, and fingerprint the content.

Two row shapes, one per line:

* chat examples ``{"messages": [{"role": "system|user|assistant", "content": "..."}, ...]}``
  (at least one assistant turn; loss is taken on assistant turns only);
* prompt rows ``{"variables": {"message": "..."}, "target": "..."}``, formatted through a registered
  prompt version (its messages, then ``target`` as the assistant turn), so training and serving share
  one template.

Either shape may carry ``"meta": {...}`` (ignored by training, kept in the fingerprint).

The fingerprint is the sha256 of the rows' canonical JSON (sorted keys, no spaces), one per line in
file order: reformatting a file keeps it, changing any value or the order changes it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from llmops.config.base import StrictModel
from llmops.errors import ConfigError, Problem, ValidationFailed

Role = Literal["system", "user", "assistant"]


class ChatMessage(StrictModel):
    role: Role
    content: str


class ChatRow(StrictModel):
    messages: list[ChatMessage] = Field(min_length=1)
    meta: dict[str, Any] = Field(default_factory=dict)


class PromptRow(StrictModel):
    variables: dict[str, Any]
    target: str
    meta: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    """One parsed row with where it came from."""

    line: int
    data: ChatRow | PromptRow
    canonical: str  # canonical JSON of the row as written

    @property
    def kind(self) -> Literal["chat", "prompt"]:
        return "chat" if isinstance(self.data, ChatRow) else "prompt"


@dataclass(frozen=True)
class RowFile:
    """A JSONL file's rows, with the lines that were blank (skipped, reported as empty)."""

    path: Path
    shown: str
    rows: list[Row]
    blank_lines: list[int]

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.rows)

    @property
    def kinds(self) -> set[str]:
        return {r.kind for r in self.rows}


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(rows: list[Row]) -> str:
    """sha256 of the rows' canonical JSON, newline-separated, in order."""
    h = hashlib.sha256()
    for row in rows:
        h.update(row.canonical.encode("utf-8") + b"\n")
    return h.hexdigest()


def _parse_row(value: Any, shown: str, line: int) -> tuple[ChatRow | PromptRow | None, list[Problem]]:
    if not isinstance(value, dict):
        return None, [Problem(shown, f"expected a JSON object, got {type(value).__name__}", line=line)]
    if "messages" in value:
        model: type[ChatRow | PromptRow] = ChatRow
    elif "variables" in value or "target" in value:
        model = PromptRow
    else:
        return None, [
            Problem(shown, "a row needs 'messages' (chat) or 'variables' and 'target' (prompt row)", line=line)
        ]
    try:
        row = model.model_validate(value)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            field = ".".join(str(p) for p in err["loc"]) or None
            msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(Problem(shown, msg, field=field, line=line))
        return None, problems
    if isinstance(row, ChatRow) and not any(m.role == "assistant" for m in row.messages):
        return None, [Problem(shown, "no assistant message: nothing to learn from", field="messages", line=line)]
    return row, []


def read_rows(path: Path, *, display: str | None = None) -> RowFile:
    """Parse every line of ``path``; raise ValidationFailed listing *all* malformed lines, if any."""
    shown = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError.at(shown, "data file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError.at(shown, f"cannot read data file: {exc}") from exc
    rows: list[Row] = []
    blank: list[int] = []
    problems: list[Problem] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            blank.append(number)
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append(Problem(shown, f"malformed JSON: {exc.msg} (column {exc.colno})", line=number))
            continue
        row, found = _parse_row(value, shown, number)
        problems.extend(found)
        if row is not None:
            rows.append(Row(number, row, canonical_json(value)))
    if problems:
        raise ValidationFailed(problems)
    if not rows:
        raise ConfigError.at(shown, "no rows: the file holds no JSON lines")
    return RowFile(path, shown, rows, blank)
