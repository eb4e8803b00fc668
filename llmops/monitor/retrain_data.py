"""The retraining dataset: captured production traffic joined with feedback, merged with the original training rows.

Which captured requests become rows (route's captured records, not shadows, inside the window):

* feedback with a ``correction`` → ``target`` = the correction (the right answer);
* feedback with ``score >= 0.5`` and no correction → ``target`` = the served output (confirmed);
* anything else (no feedback, a low score without correction, no output) is not used.

Several feedback records for one (request id, API key): the last one read wins. Rows take the job's data
format: prompt variables → ``{"variables": ..., "target": ...}``; messages → a chat row, only when the
job's training file holds chat rows (else skipped and counted as ``unsupported_format``).

Validated by the ``data validate`` rules (:func:`llmops.finetune.validation.check_split`): production rows
that are empty, duplicated (within production or of an original row), hold PII (the masks the gateway
writes, ``[EMAIL]`` ..., are not PII), or whose input occurs in the eval/test split or the route's suite
cases are dropped and counted by reason; the held-out inputs are never trained on.

The merged file is the original rows, then the production rows ordered by (request time, id), each line
canonical JSON: the same logs and window give the same bytes and the same fingerprint
(:func:`llmops.finetune.rows.fingerprint`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmops.errors import NotEnoughData
from llmops.finetune.rows import ChatRow, PromptRow, Row, RowFile, canonical_json, fingerprint
from llmops.finetune.validation import check_split, content_key, input_key
from llmops.gateway.logreader import ReadStats, iter_records

#: feedback at or above this score, without a correction, confirms the served output
CONFIRM_SCORE = 0.5
#: reasons a production row is dropped (``data validate`` kinds, plus the held-out overlap and the format)
DROP_REASONS = ("overlap_eval", "duplicate", "pii", "empty", "unsupported_format")


@dataclass
class SourceCounts:
    """Where the dataset's rows came from and why production rows were left out."""

    original_rows: int = 0
    captured: int = 0
    with_feedback: int = 0
    corrections: int = 0
    confirmed: int = 0
    unused: dict[str, int] = field(default_factory=dict)  # no_feedback, low_score, no_output
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    skipped_lines: int = 0

    @property
    def production_rows(self) -> int:
        return self.corrections + self.confirmed

    def as_dict(self) -> dict[str, Any]:
        return {
            "original_rows": self.original_rows,
            "production_rows": self.production_rows,
            "captured": self.captured,
            "with_feedback": self.with_feedback,
            "corrections": self.corrections,
            "confirmed": self.confirmed,
            "unused": dict(sorted(self.unused.items())),
            "dropped": dict(self.dropped),
            "skipped_lines": self.skipped_lines,
        }


@dataclass(frozen=True)
class RetrainDataset:
    """The merged rows (canonical JSON lines), their fingerprint and the source counts."""

    lines: list[str]
    fingerprint: str
    counts: SourceCounts
    since: float
    until: float

    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)

    def write(self, folder: Path) -> Path:
        """``folder/train.jsonl`` (written once: the fingerprint names the content)."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "train.jsonl"
        if not path.is_file() or path.read_text(encoding="utf-8") != self.text():
            tmp = path.with_suffix(".tmp")
            tmp.write_text(self.text(), encoding="utf-8")
            tmp.replace(path)
        return path


def latest_feedback(path_or_glob: str | Path, stats: ReadStats | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """Feedback records by (request id, API key name); the last one read wins."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for record in iter_records(path_or_glob, stats):
        rid, key = record.get("id"), record.get("api_key")
        if isinstance(rid, str):
            out[(rid, str(key or ""))] = record
    return out


def held_out_inputs(rows: Iterable[Row], cases: Iterable[Mapping[str, Any]] = ()) -> set[str]:
    """Input keys (:func:`~llmops.finetune.validation.input_key`) of eval/test rows and of suite cases
    (``{"variables": ...}`` or ``{"messages": [...]}`` dicts)."""
    keys = {input_key(r) for r in rows}
    for case in cases:
        if case.get("variables") is not None:
            keys.add(canonical_json({"variables": case["variables"]}))
        elif case.get("messages") is not None:
            keys.add(canonical_json([{"role": m["role"], "content": m["content"]} for m in case["messages"]]))
    return keys


def _production_row(record: Mapping[str, Any], target: str, label: str, chat_ok: bool) -> dict[str, Any] | None:
    """The row of a captured record in the job's format; None when its input cannot be expressed there."""
    captured = record.get("input") or {}
    meta = {"source": "production", "label": label, "request_id": str(record["id"])}
    variables = captured.get("variables")
    if isinstance(variables, dict):
        return {"variables": variables, "target": target, "meta": meta}
    messages = captured.get("messages")
    if isinstance(messages, list) and chat_ok:
        turns = [{"role": m.get("role"), "content": m.get("content")} for m in messages if isinstance(m, dict)]
        return {"messages": [*turns, {"role": "assistant", "content": target}], "meta": meta}
    return None


def _parse(value: dict[str, Any], line: int) -> Row | None:
    try:
        data: ChatRow | PromptRow = (
            ChatRow.model_validate(value) if "messages" in value else PromptRow.model_validate(value)
        )
    except ValueError:
        return None
    return Row(line, data, canonical_json(value))


def _candidates(
    records: Iterable[Mapping[str, Any]],
    feedback: Mapping[tuple[str, str], Mapping[str, Any]],
    route: str,
    since: float,
    until: float,
    counts: SourceCounts,
) -> list[tuple[float, str, str, str, Mapping[str, Any]]]:
    """(time, id, label, target, record) of each captured record its feedback makes usable."""
    unused: Counter[str] = Counter()
    found = []
    for record in records:
        if record.get("route") != route or record.get("captured") is not True or "shadow_of" in record:
            continue
        when = float(record.get("time") or 0.0)
        if not since <= when <= until:
            continue
        counts.captured += 1
        rid = str(record.get("id"))
        fb = feedback.get((rid, str(record.get("api_key") or "")))
        if fb is None:
            unused["no_feedback"] += 1
            continue
        counts.with_feedback += 1
        correction, output = fb.get("correction"), record.get("output")
        if isinstance(correction, str) and correction.strip():
            found.append((when, rid, "correction", correction, record))
        elif float(fb.get("score") or 0.0) < CONFIRM_SCORE:
            unused["low_score"] += 1
        elif isinstance(output, str) and output.strip():
            found.append((when, rid, "confirmed", output, record))
        else:
            unused["no_output"] += 1
    counts.unused = dict(unused)
    return sorted(found, key=lambda c: (c[0], c[1]))


def build_dataset(
    *,
    route: str,
    request_log: str | Path,
    feedback_log: str | Path,
    original: RowFile,
    held_out: set[str],
    since: float,
    until: float,
    min_records: int,
) -> RetrainDataset:
    """The merged dataset (module docstring); NotEnoughData below ``min_records`` usable production rows."""
    counts = SourceCounts(original_rows=len(original.rows))
    stats = ReadStats()
    feedback = latest_feedback(feedback_log, stats)
    candidates = _candidates(iter_records(request_log, stats), feedback, route, since, until, counts)
    counts.skipped_lines = stats.skipped
    chat_ok = "chat" in original.kinds

    rows: list[tuple[Row, str]] = []  # (row, label), lines numbered in production order
    for _when, _rid, label, target, record in candidates:
        value = _production_row(record, target, label, chat_ok)
        row = None if value is None else _parse(value, len(rows) + 1)
        if row is None:
            counts.dropped["unsupported_format"] += 1
            continue
        rows.append((row, label))
    production = RowFile(Path("production"), "production", [r for r, _ in rows], [])
    report = check_split("production", production, None, None, dict.fromkeys(held_out, "the held-out data"))
    reasons: dict[int, str] = {}
    for finding in report.findings:  # the first reason by the order of DROP_REASONS
        line = finding.problem.line or 0
        kind = "overlap_eval" if finding.kind == "overlap" else finding.kind
        if kind in DROP_REASONS and (
            line not in reasons or DROP_REASONS.index(kind) < DROP_REASONS.index(reasons[line])
        ):
            reasons[line] = kind
    original_content = {content_key(r) for r in original.rows}
    kept: list[Row] = []
    for row, label in rows:
        reason = reasons.get(row.line) or ("duplicate" if content_key(row) in original_content else None)
        if reason:
            counts.dropped[reason] += 1
            continue
        kept.append(row)
        if label == "correction":
            counts.corrections += 1
        else:
            counts.confirmed += 1
    if len(kept) < min_records:
        raise NotEnoughData(
            f"route {route}: {len(kept)} usable production row(s) (corrections or confirmed answers) since "
            f"{since:.0f}, fewer than the {min_records} needed; nothing trained "
            f"(captured {counts.captured}, with feedback {counts.with_feedback}, dropped "
            f"{sum(counts.dropped.values())})"
        )
    merged = [*original.rows, *kept]
    return RetrainDataset([r.canonical for r in merged], fingerprint(merged), counts, since, until)
