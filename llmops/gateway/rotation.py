"""Size-bounded JSONL logs: rotated files beside the live one, the oldest deleted beyond a count.

A log ``logs/gateway-requests.jsonl`` rotates to ``logs/gateway-requests.20261130T102113Z-1.jsonl``
(UTC time of the rotation, then a counter that starts at 1 for each second), so the glob
``logs/gateway-requests*.jsonl`` reads every file and ``sorted()`` puts the live file last (a digit
sorts before ``j``). Rotation happens between whole batches of whole lines (the sink's ``write``), so
no record is ever split between two files. Readers window by each record's ``time``; the order of
files by name is oldest first except for two rotations of one second numbered 9 and 10, which
:func:`rotated_files` orders numerically.

Several replicas must not share one live file: give each its own ``request_log.path``.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

_STAMP = "%Y%m%dT%H%M%SZ"


def _pattern(path: Path) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(path.stem)}\.(\d{{8}}T\d{{6}}Z)-(\d+){re.escape(path.suffix)}$")


def rotated_files(path: Path) -> list[Path]:
    """The rotated files of the live log ``path``, oldest first."""
    pattern = _pattern(path)
    found: list[tuple[str, int, Path]] = []
    try:
        entries = list(os.scandir(path.parent))
    except FileNotFoundError:
        return []
    for entry in entries:
        match = pattern.match(entry.name)
        if match is not None:
            found.append((match.group(1), int(match.group(2)), Path(entry.path)))
    return [p for _, _, p in sorted(found)]


def rotated_name(path: Path, now: float | None = None) -> Path:
    """A free name for the next rotation of ``path``: its stem, the UTC second, a counter, its suffix."""
    stamp = time.strftime(_STAMP, time.gmtime(time.time() if now is None else now))
    pattern = _pattern(path)
    taken = [int(m.group(2)) for p in rotated_files(path) if (m := pattern.match(p.name)) and m.group(1) == stamp]
    return path.with_name(f"{path.stem}.{stamp}-{max(taken, default=0) + 1}{path.suffix}")


def rotate(path: Path, files_kept: int, now: float | None = None) -> Path:
    """Move the live file ``path`` aside (the caller has closed it); delete rotated files beyond ``files_kept``."""
    target = rotated_name(path, now)
    os.replace(path, target)
    old = rotated_files(path)
    for stale in old[: max(len(old) - files_kept, 0)]:
        stale.unlink(missing_ok=True)
    return target


def ends_mid_line(path: Path) -> bool:
    """Whether the file ``path`` is non-empty and its last byte is not a newline (a crash cut a record)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                return False
            f.seek(-1, os.SEEK_END)
            return f.read(1) != b"\n"
    except FileNotFoundError:
        return False
