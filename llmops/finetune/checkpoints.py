"""Checkpoints that are either complete or ignored.

Why a marker: ``Trainer`` writes a checkpoint folder file by file (adapter, optimizer, scheduler, RNG
state, trainer state). A process killed half-way leaves a folder that looks like a checkpoint but
cannot be resumed from. After the Trainer has written everything it calls ``on_save``; only then do we
fsync every file of the folder and the folder itself (so a power loss cannot leave a marked checkpoint
whose files are still in the page cache) and write :data:`MARKER` (atomically: a temporary file,
fsync'd, renamed into place, then the folder fsync'd again so the rename is durable). ``--resume`` considers only
marked folders, and older checkpoints are pruned only after a newer one is marked, so at every instant
at least one complete checkpoint survives.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

MARKER = "llmops-complete.json"
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_step(path: Path) -> int | None:
    match = _CHECKPOINT_RE.match(path.name)
    return int(match.group(1)) if match else None


def all_checkpoints(folder: Path) -> list[Path]:
    """Every ``checkpoint-N`` folder (complete or not), oldest step first."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and checkpoint_step(p) is not None]
    return sorted(found, key=lambda p: checkpoint_step(p) or 0)


def is_complete(path: Path) -> bool:
    return (path / MARKER).is_file()


def latest_complete(folder: Path) -> Path | None:
    """The newest checkpoint carrying the completeness marker; partial ones are ignored."""
    complete = [p for p in all_checkpoints(folder) if is_complete(p)]
    return complete[-1] if complete else None


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_tree(path: Path) -> None:
    """fsync every file under ``path``, then every folder (deepest first, ``path`` last; POSIX only)."""
    for root, _dirs, files in os.walk(path, topdown=False):
        for name in files:
            _fsync(Path(root) / name)
        if os.name == "posix":  # a folder's entries are durable only once the folder is fsync'd
            _fsync(Path(root))


def mark_complete(path: Path, info: dict[str, Any]) -> None:
    """Write the marker atomically (temp file + rename), after every other file of the checkpoint is on disk."""
    sync_tree(path)
    fd, tmp = tempfile.mkstemp(prefix=".marker-", dir=path)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(info, f, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path / MARKER)
    if os.name == "posix":
        _fsync(path)


def prune(folder: Path, *, keep: Path) -> list[Path]:
    """Delete every checkpoint other than ``keep`` (which must be complete); return what was removed."""
    if not is_complete(keep):
        return []
    removed = []
    for path in all_checkpoints(folder):
        if path != keep:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
