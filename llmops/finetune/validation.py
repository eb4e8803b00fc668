"""Data checks before training: empty and over-long rows, duplicates, train/eval overlap, simple PII.

Why before training and not inside it: a bad dataset wastes a GPU hour and then hides in the adapter.
Schema problems (malformed JSON, wrong row shape, a prompt variable that does not render) are errors
and stop everything (:mod:`llmops.finetune.rows`, :mod:`llmops.finetune.dataset`). What this module
finds are *warnings*: ``llmops finetune run`` refuses them unless ``--allow-warnings``, and then logs
them to the run. Empty and over-long rows cannot be trained on and are dropped; the rest are kept.

* **empty** - a blank line, an empty assistant turn or target, or a row whose inputs are all empty;
* **too_long** - more tokens (after the chat template) than ``max_seq_len``;
* **duplicate** - the same row (``meta`` aside) as an earlier line of the same file;
* **overlap** - an eval row whose input (everything before the answer) also occurs in the train file:
  its eval loss would measure memorisation;
* **pii** - an email address, a phone number, a card number that passes the Luhn check, or an IBAN
  (the detectors of :mod:`llmops.pii`, which the gateway's capture redacts with).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmops.errors import Problem
from llmops.finetune.dataset import Example
from llmops.finetune.rows import ChatRow, Row, RowFile, canonical_json
from llmops.pii import _luhn as _luhn  # re-exported: the detectors live in llmops.pii
from llmops.pii import pii_kinds

KINDS = ("empty", "too_long", "duplicate", "overlap", "pii")
#: kinds whose rows are dropped when warnings are allowed (they cannot be trained on)
DROPPED_KINDS = ("empty", "too_long")


@dataclass(frozen=True)
class Finding:
    """One warning about one row."""

    kind: str
    problem: Problem


@dataclass
class SplitReport:
    """What the checks found in one file (``train`` or ``eval``)."""

    split: str
    shown: str
    rows: int
    kinds: dict[str, int]
    fingerprint: str
    token_lengths: list[int] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def dropped_lines(self) -> set[int]:
        """Lines that training skips (empty or over-long rows)."""
        return {f.problem.line for f in self.findings if f.kind in DROPPED_KINDS and f.problem.line is not None}

    def token_stats(self) -> str:
        if not self.token_lengths:
            return "tokens: not counted"
        lengths = self.token_lengths
        return f"tokens min {min(lengths)} / mean {statistics.fmean(lengths):.0f} / max {max(lengths)}"


@dataclass
class DataReport:
    """The checks' result for a job's files; ``warnings`` empty means clean."""

    splits: list[SplitReport]
    notes: list[str] = field(default_factory=list)

    @property
    def warnings(self) -> list[Finding]:
        return [f for s in self.splits for f in s.findings]

    def counts(self) -> dict[str, int]:
        counter = Counter(f.kind for f in self.warnings)
        return {kind: counter.get(kind, 0) for kind in KINDS}

    def split(self, name: str) -> SplitReport | None:
        return next((s for s in self.splits if s.split == name), None)

    def as_text(self) -> str:
        """The warnings, one per line (``file:line: [kind] message``), for logs and run artifacts."""
        return "\n".join(f"{f.problem} [{f.kind}]" for f in self.warnings) + ("\n" if self.warnings else "")


def _texts(row: Row) -> list[str]:
    if isinstance(row.data, ChatRow):
        return [m.content for m in row.data.messages]
    return [*_strings(row.data.variables), row.data.target]


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _is_empty(row: Row) -> str | None:
    if isinstance(row.data, ChatRow):
        for i, m in enumerate(row.data.messages):
            if m.role == "assistant" and not m.content.strip():
                return f"empty assistant message (messages.{i})"
        if not any(m.content.strip() for m in row.data.messages if m.role != "assistant"):
            return "every input message is empty"
        return None
    if not row.data.target.strip():
        return "empty target"
    if not any(s.strip() for s in _strings(row.data.variables)):
        return "every variable is empty"
    return None


def content_key(row: Row) -> str:
    """The row without ``meta``: two rows with equal keys train the model identically."""
    if isinstance(row.data, ChatRow):
        return canonical_json([m.model_dump() for m in row.data.messages])
    return canonical_json({"variables": row.data.variables, "target": row.data.target})


def input_key(row: Row) -> str:
    """What a request would send: chat turns before the last assistant turn, or the prompt variables."""
    if isinstance(row.data, ChatRow):
        messages = [m.model_dump() for m in row.data.messages]
        last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
        return canonical_json(messages[:last])
    return canonical_json({"variables": row.data.variables})


def check_split(
    split: str,
    rows: RowFile,
    examples: Sequence[Example] | None,
    max_seq_len: int | None,
    earlier_inputs: Mapping[str, str] | None = None,
) -> SplitReport:
    """Run every check on one file; ``earlier_inputs`` (input key → where it occurs, e.g. ``train line 3``)
    enables the overlap check."""
    report = SplitReport(
        split=split,
        shown=rows.shown,
        rows=len(rows.rows),
        kinds=dict(Counter(r.kind for r in rows.rows)),
        fingerprint=rows.fingerprint,
    )

    def warn(kind: str, line: int, message: str) -> None:
        report.findings.append(Finding(kind, Problem(rows.shown, message, line=line)))

    for line in rows.blank_lines:
        warn("empty", line, "blank line")
    seen: dict[str, int] = {}
    for row in rows.rows:
        reason = _is_empty(row)
        if reason:
            warn("empty", row.line, reason)
        key = content_key(row)
        if key in seen:
            warn("duplicate", row.line, f"same row as line {seen[key]}")
        else:
            seen[key] = row.line
        if earlier_inputs is not None and input_key(row) in earlier_inputs:
            warn("overlap", row.line, f"same input as {earlier_inputs[input_key(row)]}")
        found = set().union(*(pii_kinds(t) for t in _texts(row)))
        if found:
            warn("pii", row.line, f"possible personal data: {', '.join(sorted(found))}")
    if examples is not None:
        report.token_lengths = [e.n_tokens for e in examples]
        if max_seq_len is not None:
            for e in examples:
                if e.n_tokens > max_seq_len:
                    warn("too_long", e.line, f"{e.n_tokens} tokens > max_seq_len {max_seq_len}")
    report.findings.sort(key=lambda f: (f.problem.line or 0, KINDS.index(f.kind)))
    return report


def check_data(
    train: RowFile,
    train_examples: Sequence[Example] | None,
    eval_rows: RowFile | None = None,
    eval_examples: Sequence[Example] | None = None,
    *,
    max_seq_len: int | None = None,
    test_rows: RowFile | None = None,
) -> DataReport:
    """Check the train file and, when given, the eval and held-out test files: eval's overlap against
    train, the test's against train and eval (a held-out row seen while training, or while choosing
    checkpoints, measures recall). The test split is not tokenized: it is never trained on."""
    splits = [check_split("train", train, train_examples, max_seq_len)]
    earlier = _inputs_of("train", train)
    if eval_rows is not None:
        splits.append(check_split("eval", eval_rows, eval_examples, max_seq_len, earlier))
        earlier = {**_inputs_of("eval", eval_rows), **earlier}
    if test_rows is not None:
        splits.append(check_split("test", test_rows, None, None, earlier))
    return DataReport(splits)


def _inputs_of(split: str, rows: RowFile) -> dict[str, str]:
    """Input key → ``"<split> line N"`` of its first row in ``rows``."""
    found: dict[str, str] = {}
    for row in rows.rows:
        found.setdefault(input_key(row), f"{split} line {row.line}")
    return found
