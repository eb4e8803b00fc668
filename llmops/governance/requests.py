"""Find one request in the gateway's logs (every replica's, rotated files too) and its feedback.

The record is looked up by id across files matched by globs; the search reads raw lines and parses
only the lines that contain the id, so tracing through months of logs costs one pass of byte search.
When no file holds the id, :func:`pruned_by` says whether a retention run removed the records of the
time the id was made (request ids carry their time: :mod:`llmops.requestid`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmops.gateway.logreader import log_files, parse_line
from llmops.requestid import request_id_time

if TYPE_CHECKING:
    from llmops.registry.audit import AuditRecord, AuditStore

#: the retention audit records' object for request logs (llmops.governance.retention writes them)
REQUEST_LOG_OBJECT = "request-log"


@dataclass(frozen=True)
class Found:
    """A request-log record and where it was read."""

    record: dict[str, Any]
    file: Path
    line: int


@dataclass(frozen=True)
class Searched:
    """What a search read: the globs, the files they matched and how many lines were scanned."""

    globs: tuple[str, ...]
    files: tuple[str, ...]
    lines: int


def _scan(files: Sequence[Path], request_id: str, *, key: str) -> tuple[list[Found], int]:
    needle = request_id.encode()  # any JSON formatting of the record still holds the id's bytes
    found: list[Found] = []
    lines = 0
    for path in files:
        try:
            with path.open("rb") as handle:
                for number, line in enumerate(handle, 1):
                    lines += 1
                    if needle not in line:
                        continue
                    record, _ = parse_line(line)
                    if record is not None and record.get(key) == request_id:
                        found.append(Found(record, path, number))
        except FileNotFoundError:  # rotated away between the glob and the read
            continue
    return found, lines


def _files(globs: Sequence[str]) -> list[Path]:
    seen: dict[Path, None] = {}
    for pattern in globs:
        for path in log_files(pattern):
            seen.setdefault(path, None)
    return list(seen)


def find_request(globs: Sequence[str], request_id: str) -> tuple[Found | None, Searched]:
    """The request-log record of ``request_id`` (the first one when a log was shipped twice) and what was read."""
    files = _files(globs)
    found, lines = _scan(files, request_id, key="id")
    searched = Searched(tuple(globs), tuple(str(f) for f in files), lines)
    return (found[0] if found else None), searched


def feedback_of(globs: Sequence[str], request_id: str) -> list[dict[str, Any]]:
    """The feedback records of ``request_id``, the last one per API key (``POST /v1/feedback`` is idempotent per request id and key)."""
    found, _ = _scan(_files(globs), request_id, key="id")
    latest: dict[str, dict[str, Any]] = {}
    for item in found:
        latest[str(item.record.get("api_key") or "")] = item.record
    return list(latest.values())


def shadows_of(globs: Sequence[str], request_id: str) -> list[Found]:
    """The shadow records whose primary is ``request_id``."""
    found, _ = _scan(_files(globs), request_id, key="shadow_of")
    return found


@dataclass(frozen=True)
class Pruned:
    """A retention run that removed the request-log records of the time an id was made."""

    record_id: str
    actor: str
    pruned_ms: int
    cutoff: float
    reason: str


def pruned_by(audit: AuditStore, request_id: str, *, what: str = REQUEST_LOG_OBJECT) -> Pruned | None:
    """The retention record whose cutoff is after the id's time (the id's records were removed); None otherwise."""
    made = request_id_time(request_id)
    return None if made is None else pruned_at(audit, made, what=what)


def pruned_at(audit: AuditStore, at_s: float, *, what: str) -> Pruned | None:
    """The retention record of ``what`` (``request-log``, ``feedback-log``, ``audit``) that removed records of
    time ``at_s``; None when no retention run reached back that far."""
    for record in audit.records(what, kind="retention", limit=1000):
        cutoff = _cutoff(record)
        if cutoff is not None and at_s < cutoff:
            return Pruned(record.record_id or "", record.actor, record.timestamp_ms, cutoff, record.reason)
    return None


def _cutoff(record: AuditRecord) -> float | None:
    try:
        value = json.loads(record.detail or "{}").get("cutoff")
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, (int, float)) else None
