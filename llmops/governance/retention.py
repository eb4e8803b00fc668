"""Retention: prune request logs, feedback and audit records older than ``llmops.yaml``'s ``retention:``.

``llmops logs prune`` calls :func:`prune`. A record is expired when its ``time`` (epoch seconds) is
before ``now - days * 86400``; request logs use ``retention.request_logs_days``, feedback logs
``retention.feedback_days``, audit records ``retention.audit_days`` (unset: kept forever).

Log files, line by line (a line is kept byte for byte unless it is an expired record):

- a **rotated** file (its name carries a rotation stamp, ``NAME.20261130T102113Z-1.jsonl``, see
  :mod:`llmops.gateway.rotation`; no writer holds it) is deleted when every line is an expired record,
  rewritten atomically when some are (the kept lines go to a temporary file in the same folder, which
  is fsynced and then ``os.replace``\\ d over the file), and left alone otherwise. A line that does not
  parse, or a record without a numeric ``time``, cannot be dated: it is kept, and counted.
- the **live** file (any other name: a running gateway appends to it through an open handle) is never
  rewritten under a writer: its records would be appended to the replaced file and lost. By default it is
  skipped with a note saying how many of its records are expired; they go once it rotates
  (``request_log.max_bytes``). With ``include_live`` it is pruned like a rotated file, but only when no
  process of this machine holds it open (checked through ``/proc/PID/fd``; where that cannot be checked,
  for the file owner's processes or without ``/proc``, it is skipped with a note). A gateway on another
  machine writing to a shared folder cannot be seen: each replica writes its own file on its own machine.

Readers cope with a rewritten rotated file: :func:`llmops.gateway.logreader.iter_records` reads whole
files, and the rollout's incremental reader (:mod:`llmops.rollout.samples`) sees a new inode, reads it
again, and counts each request id once.

Audit records older than ``audit_days`` are deleted through the registry
(:meth:`llmops.registry.audit.AuditStore.delete_before`; MLflow marks the runs deleted, ``mlflow gc``
purges them); retention records themselves are never pruned.

Evidence: every run that is not a dry run appends one audit record per object it applied a policy to
(``request-log``, ``feedback-log``, and ``audit`` when ``audit_days`` is set), even when nothing was
removed, so the policy's execution is itself on record: kind ``retention``, outcome ``pruned``, alias
``""``, reason ``older than N days``, detail JSON ``{"cutoff", "removed", "oldest", "newest", "files"}``
(epoch seconds; ``oldest``/``newest`` of the removed records, null when none; ``files`` deleted or
rewritten, relative to the llmops home). A dry run reads everything and writes nothing.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from llmops.config.workspace import RetentionSettings, Workspace
from llmops.events import SILENT, Reporter
from llmops.gateway.logreader import log_files, parse_line
from llmops.gateway.rotation import rotated_files
from llmops.registry import Registry
from llmops.registry.audit import RETENTION_KIND, AuditRecord

DAY_S = 86_400
#: files at least this large get a progress task
PROGRESS_BYTES = 8 * 1024 * 1024
PROGRESS_STEP = 1024 * 1024
_ROTATED = re.compile(r"^.+\.\d{8}T\d{6}Z-\d+\.[^.]+$")

Action = str  # "deleted" | "rewritten" | "unchanged" | "skipped" (the live file, left alone)


@dataclass(frozen=True)
class FileResult:
    """What pruning did (or, in a dry run, would do) to one file."""

    path: Path
    action: Action
    removed: int = 0  # expired records removed
    kept: int = 0  # lines kept (records and undated lines)
    undated: int = 0  # lines kept because they cannot be dated
    expired: int = 0  # expired records found (in a skipped file they stay)
    oldest: float | None = None  # time of the oldest / newest removed record
    newest: float | None = None
    note: str = ""


@dataclass(frozen=True)
class PruneResult:
    """One object's policy applied: ``object`` is ``request-log``, ``feedback-log`` or ``audit``."""

    object: str
    days: int
    cutoff: float
    removed: int
    oldest: float | None
    newest: float | None
    files: tuple[FileResult, ...] = ()
    dry_run: bool = False
    record_id: str | None = None  # the audit record written (None in a dry run)

    @property
    def reason(self) -> str:
        return f"older than {self.days} days"

    def detail(self, home: Path) -> dict[str, Any]:
        """The audit record's detail (module docstring)."""
        changed = [_shown(f.path, home) for f in self.files if f.action in ("deleted", "rewritten")]
        return {"cutoff": self.cutoff, "removed": self.removed, "oldest": self.oldest, "newest": self.newest,
                "files": changed}  # fmt: skip


@dataclass
class _Scan:
    removed: int = 0
    kept: int = 0
    undated: int = 0
    times: list[float] = field(default_factory=list)


def _shown(path: Path, home: Path) -> str:
    resolved = path.resolve()
    return resolved.relative_to(home.resolve()).as_posix() if resolved.is_relative_to(home.resolve()) else str(path)


def is_rotated(path: Path) -> bool:
    """Whether ``path`` is a rotated log file (its name carries a rotation stamp) rather than a live one."""
    return _ROTATED.match(path.name) is not None


def _time(line: bytes) -> float | None:
    record, _ = parse_line(line)
    value = None if record is None else record.get("time")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _scan(path: Path, cutoff: float, out: IO[bytes] | None, reporter: Reporter) -> _Scan:
    """Read ``path`` line by line; write the kept lines to ``out`` when given."""
    scan = _Scan()
    size = path.stat().st_size
    task = reporter.task(f"reading {path.name}", size) if size >= PROGRESS_BYTES else None
    done = shown = 0
    with path.open("rb") as handle:
        for line in handle:
            done += len(line)
            when = _time(line)
            if when is not None and when < cutoff:
                scan.removed += 1
                scan.times.append(when)
            else:
                scan.kept += 1
                scan.undated += when is None and bool(line.strip())
                if out is not None:
                    out.write(line)
            if task is not None and done - shown >= PROGRESS_STEP:
                task.update(done)
                shown = done
    if task is not None:
        task.update(size)
        task.close()
    return scan


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def prune_file(path: Path, cutoff: float, *, dry_run: bool = False, reporter: Reporter = SILENT) -> FileResult:
    """Remove the expired records of the file ``path`` no writer holds (module docstring)."""
    if dry_run:
        scan = _scan(path, cutoff, None, reporter)
        action = "unchanged" if not scan.removed else "deleted" if not scan.kept else "rewritten"
        return _result(path, action, scan)
    before = path.stat()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".prune-tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            scan = _scan(path, cutoff, out, reporter)
            out.flush()
            os.fsync(out.fileno())
        if not scan.removed:
            return _result(path, "unchanged", scan)
        current = path.stat()
        if (current.st_ino, current.st_size) != (before.st_ino, before.st_size):  # a writer after all: leave it
            note = "the file changed while it was read; left for the next run"
            return FileResult(path, "skipped", kept=scan.kept + scan.removed, undated=scan.undated,
                              expired=scan.removed, note=note)  # fmt: skip
        if not scan.kept:
            path.unlink()
            action = "deleted"
        else:
            os.chmod(tmp, before.st_mode & 0o7777)
            os.replace(tmp, path)
            action = "rewritten"
        _fsync_dir(path.parent)
        return _result(path, action, scan)
    finally:
        tmp.unlink(missing_ok=True)


def _result(path: Path, action: Action, scan: _Scan) -> FileResult:
    return FileResult(
        path=path, action=action, removed=scan.removed, kept=scan.kept, undated=scan.undated, expired=scan.removed,
        oldest=min(scan.times, default=None), newest=max(scan.times, default=None),
    )  # fmt: skip


def holders(path: Path) -> list[int] | None:
    """PIDs of this machine's processes that hold ``path`` open; None when that cannot be known (no
    ``/proc``, or a process of the file's owner whose open files cannot be read)."""
    proc = Path("/proc")
    if not (proc / "self" / "fd").is_dir():
        return None
    st = path.stat()
    found: list[int] = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except FileNotFoundError:
            continue  # the process ended
        except PermissionError:
            try:
                if entry.stat().st_uid == st.st_uid:
                    return None
            except FileNotFoundError:
                pass
            continue
        for fd in fds:
            try:
                target = fd.stat()
            except OSError:
                continue
            if (target.st_dev, target.st_ino) == (st.st_dev, st.st_ino):
                found.append(int(entry.name))
                break
    return found


def _prune_live(path: Path, cutoff: float, *, include_live: bool, dry_run: bool, reporter: Reporter) -> FileResult:
    if include_live:
        held = holders(path)
        if held == []:
            return prune_file(path, cutoff, dry_run=dry_run, reporter=reporter)
        why = (
            "cannot check which processes hold it" if held is None else f"held open by PID {', '.join(map(str, held))}"
        )
    else:
        why = "live file (a running gateway appends to it)"
    scan = _scan(path, cutoff, None, reporter)
    note = f"{why}: left alone; its expired records go once it rotates"
    if not include_live:
        note += ", or with --include-live while no gateway runs"
    return FileResult(path, "skipped", kept=scan.kept + scan.removed, undated=scan.undated, expired=scan.removed,
                      note=note)  # fmt: skip


def prune_log_files(
    object_name: str, files: Sequence[Path], days: int, *, now: float, include_live: bool = False,
    dry_run: bool = False, reporter: Reporter = SILENT,
) -> PruneResult:  # fmt: skip
    """Apply a ``days`` policy to ``files`` (rotated files are pruned, live files per ``include_live``)."""
    cutoff = now - days * DAY_S
    results: list[FileResult] = []
    for path in files:
        if not path.is_file():
            continue
        if is_rotated(path):
            results.append(prune_file(path, cutoff, dry_run=dry_run, reporter=reporter))
        else:
            results.append(_prune_live(path, cutoff, include_live=include_live, dry_run=dry_run, reporter=reporter))
    removed = [f for f in results if f.removed]
    return PruneResult(
        object=object_name, days=days, cutoff=cutoff, removed=sum(f.removed for f in results),
        oldest=min((f.oldest for f in removed if f.oldest is not None), default=None),
        newest=max((f.newest for f in removed if f.newest is not None), default=None),
        files=tuple(results), dry_run=dry_run,
    )  # fmt: skip


def prune_audit(registry: Registry, days: int, *, now: float, dry_run: bool = False) -> PruneResult:
    """Delete the audit records older than ``days`` (retention records excepted)."""
    cutoff = now - days * DAY_S
    expired = registry.audit.expired(int(cutoff * 1000))
    removed = len(expired) if dry_run else registry.audit.delete_before(int(cutoff * 1000))
    times = [r.timestamp_ms / 1000 for r in expired]
    return PruneResult(
        object="audit", days=days, cutoff=cutoff, removed=removed, oldest=min(times, default=None),
        newest=max(times, default=None), dry_run=dry_run,
    )  # fmt: skip


def default_log_files(live: Path | None) -> list[Path]:
    """The live log ``live`` and its rotated files, oldest first (none when logging is off)."""
    return [] if live is None else [*rotated_files(live), live]


def files_of(globs: Iterable[str], home: Path) -> list[Path]:
    """The files the paths or globs name (relative ones against ``home``), each once, in name order."""
    found: dict[str, Path] = {}
    for pattern in globs:
        path = Path(pattern).expanduser()
        for file in log_files(path if path.is_absolute() else home / path):
            found.setdefault(str(file.resolve()), file)
    return list(found.values())


@dataclass(frozen=True)
class Targets:
    """What to prune: the request log and feedback log files (live and rotated)."""

    request_logs: tuple[Path, ...]
    feedback_logs: tuple[Path, ...]


def prune(
    ws: Workspace, registry: Registry, targets: Targets, *, actor: str, policy: RetentionSettings | None = None,
    include_live: bool = False, dry_run: bool = False, now: float | None = None, reporter: Reporter = SILENT,
) -> list[PruneResult]:  # fmt: skip
    """Apply the workspace's retention policy; append one audit record per object unless ``dry_run``."""
    policy = policy or ws.settings.retention
    now = time.time() if now is None else now
    results: list[PruneResult] = []
    for name, files, days in (("request-log", targets.request_logs, policy.request_logs_days),
                              ("feedback-log", targets.feedback_logs, policy.feedback_days)):  # fmt: skip
        result = prune_log_files(name, files, days, now=now, include_live=include_live, dry_run=dry_run,
                                 reporter=reporter)  # fmt: skip
        results.append(_recorded(registry, result, ws.home, actor))
    if policy.audit_days is not None:
        results.append(_recorded(registry, prune_audit(registry, policy.audit_days, now=now, dry_run=dry_run),
                                 ws.home, actor))  # fmt: skip
    return results


def _recorded(registry: Registry, result: PruneResult, home: Path, actor: str) -> PruneResult:
    if result.dry_run:
        return result
    record = registry.audit.append(
        AuditRecord(
            kind=RETENTION_KIND, object=result.object, alias="", from_version=None, to_version=None, actor=actor,
            reason=result.reason, outcome="pruned", detail=json.dumps(result.detail(home), sort_keys=True),
        )
    )  # fmt: skip
    return PruneResult(**{**result.__dict__, "record_id": record.record_id})
