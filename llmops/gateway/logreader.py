"""Read the gateway's request log (JSONL) back, tolerating what a crash leaves behind.

The gateway appends whole lines in batches (:mod:`llmops.gateway.requestlog`). A process killed
mid-write (``kill -9``, power loss) can leave the file's last line partial; when the gateway starts
again it appends after that fragment, so the fragment ends up glued to the front of the next record.
:func:`iter_records` skips such lines and counts them in :class:`ReadStats`; from a glued line it
still recovers the whole record that follows the fragment (a record always starts with ``{"id":``,
and those bytes cannot occur inside a JSON string, where quotes are escaped).

Used by monitoring and ``llmops trace``; several files (one per replica, rotated files) are read in
name order through a glob: ``iter_records("logs/gateway-requests*.jsonl")``.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

#: how every record begins (``id`` is the first key the gateway writes)
RECORD_START = b'{"id":'


@dataclass
class ReadStats:
    """What a read found: files read, records returned, lines skipped (partial or not a JSON object)."""

    files: list[Path] = field(default_factory=list)
    records: int = 0
    skipped: int = 0


def log_files(path_or_glob: str | Path) -> list[Path]:
    """The files ``path_or_glob`` names, in name order (a plain path that does not exist: none)."""
    text = str(path_or_glob)
    if glob.has_magic(text):
        return [Path(p) for p in sorted(glob.glob(text)) if Path(p).is_file()]
    path = Path(text)
    return [path] if path.is_file() else []


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def parse_line(line: bytes) -> tuple[dict[str, Any] | None, bool]:
    """(the record on ``line`` or None, whether part of the line was skipped)."""
    if not line.strip():
        return None, False
    record = _parse(line)
    if record is not None:
        return record, False
    start = line.find(RECORD_START, 1)  # a fragment of a killed write, then a whole record
    if start > 0:
        return _parse(line[start:]), True
    return None, True


def iter_records(path_or_glob: str | Path, stats: ReadStats | None = None) -> Iterator[dict[str, Any]]:
    """Yield every complete record of the request log(s) ``path_or_glob``, oldest file first.

    A partial or malformed line is skipped and counted in ``stats.skipped``; reading never fails on one.
    """
    stats = stats if stats is not None else ReadStats()
    for path in log_files(path_or_glob):
        stats.files.append(path)
        with path.open("rb") as handle:
            for line in handle:
                record, skipped = parse_line(line)
                if skipped:
                    stats.skipped += 1
                if record is not None:
                    stats.records += 1
                    yield record
