"""What git knows about a workspace file: the commit that last touched it, and whether it is dirty."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GitInfo:
    commit: str | None
    subject: str | None
    dirty: bool
    path: str  # path relative to the repository root, or as given outside git


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=15, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def file_info(path: Path) -> GitInfo:
    """Commit and subject of the last commit touching ``path``; HEAD and dirty=True if it has edits."""
    path = path.resolve()
    folder = path.parent
    top = _git(["rev-parse", "--show-toplevel"], folder)
    if not top:
        return GitInfo(None, None, True, path.name)
    rel = path.relative_to(Path(top).resolve()).as_posix()
    status = _git(["status", "--porcelain", "--", rel], Path(top))
    dirty = bool(status)
    if dirty:
        head = _git(["rev-parse", "HEAD"], Path(top))
        return GitInfo(head or None, f"uncommitted changes to {rel}", True, rel)
    log = _git(["log", "-1", "--format=%H%x00%s", "--", rel], Path(top))
    if not log:
        return GitInfo(None, None, True, rel)
    commit, _, subject = log.partition("\x00")
    return GitInfo(commit, subject, False, rel)


def actor() -> str:
    """Who is acting: LLMOPS_ACTOR, else git's user.email, else the login name."""
    import getpass
    import os

    if os.environ.get("LLMOPS_ACTOR"):
        return os.environ["LLMOPS_ACTOR"]
    email = _git(["config", "user.email"], Path.cwd())
    if email:
        return email
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
