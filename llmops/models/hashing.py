"""Content hashes of model and adapter folders.

Why: a base model or adapter is identified by *what it contains*, not where it lies, so the registry
can refuse an adapter whose files changed and a cache can tell a finished build from a stale one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """Hex sha256 of one file's bytes, read in chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def directory_sha256(path: Path, *, exclude: Iterable[str] = ()) -> str:
    """Hex sha256 over every regular file under ``path``, in sorted relative-path order.

    Each file contributes its POSIX relative path, a NUL byte and the sha256 of its bytes, so renaming
    a file changes the hash, and so does moving bytes from one file to another. ``exclude`` names
    relative paths to skip (e.g. a manifest that records this very hash, or build timings).
    Symbolic links and other non-regular files are refused: they could point outside the folder.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"not a folder: {root}")
    skipped = set(exclude)
    h = hashlib.sha256()
    entries = sorted(root.rglob("*"), key=lambda p: p.relative_to(root).as_posix())
    for entry in entries:
        rel = entry.relative_to(root).as_posix()
        if rel in skipped:
            continue
        if entry.is_symlink():
            raise ValueError(f"refusing to hash a symbolic link: {entry}")
        if entry.is_dir():
            continue
        if not entry.is_file():
            raise ValueError(f"refusing to hash a non-regular file: {entry}")
        h.update(rel.encode("utf-8") + b"\0")
        h.update(bytes.fromhex(file_sha256(entry)))
    return h.hexdigest()
