"""What ``llmops report`` reads: the release at a route's stage, its lineage, the audit log, the workspace files.

:func:`gather` does every registry read and file read once and returns a :class:`ReportInputs`; the
documents (:mod:`~llmops.governance.card`, :mod:`~llmops.governance.annex`) are pure functions of it, so
tests build them from hand-made values. A workspace file that is absent or does not validate is
``None`` (its statements then say "not recorded") and its problem is listed in
:attr:`ReportInputs.problems`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from llmops.config.gateway import GatewayFile, load_gateway_file
from llmops.config.monitor import MonitorFile, load_monitor_file
from llmops.config.rollout import RolloutFile, load_rollout_file
from llmops.errors import LlmopsError, NoReleaseAtStage
from llmops.evals.files import load_suite
from llmops.evals.spec import EvalSuite
from llmops.governance.lineage import ReleaseLineage, release_lineage
from llmops.registry.audit import AuditRecord, settled

if TYPE_CHECKING:
    from llmops.config.workspace import Workspace
    from llmops.registry import Registry
    from llmops.registry.routestate import RouteState

GATEWAY_FILE = "serving/gateway.yaml"
ROLLOUT_FILE = "serving/rollout.yaml"
MONITOR_FILE = "serving/monitor.yaml"
AUDIT_LIMIT = 1000
T = TypeVar("T")


@dataclass(frozen=True)
class SuiteFile:
    """An eval suite file of the workspace; ``matches``: its hash equals the record's (the exact spec it ran)."""

    path: str
    suite: EvalSuite
    suite_hash: str


@dataclass(frozen=True)
class ReportInputs:
    route: str
    stage: str
    pointer_version: int
    lineage: ReleaseLineage
    audit: tuple[AuditRecord, ...] = ()  # the route's, its adapter's and its prompt's records, newest first
    route_state: RouteState | None = None
    gateway: GatewayFile | None = None
    rollout: RolloutFile | None = None
    monitor: MonitorFile | None = None
    suites: tuple[SuiteFile, ...] = ()
    eval_reports: dict[str, dict[str, Any]] = field(default_factory=dict)  # record id -> its report.json
    retention: dict[str, int | None] = field(default_factory=dict)  # llmops.yaml retention: (days; None: forever)
    generated_ms: int = 0
    problems: tuple[str, ...] = ()  # workspace files that could not be read

    def suite_for(self, name: str, suite_hash: str) -> tuple[SuiteFile | None, bool]:
        """The workspace suite file of an eval record: (file, exact) — exact when its hash is the record's;
        else the file of that suite name (changed since), else None."""
        exact = [s for s in self.suites if s.suite_hash == suite_hash]
        if exact:
            return exact[0], True
        named = [s for s in self.suites if s.suite.name == name]
        return (named[0], False) if named else (None, False)


def _load(problems: list[str], shown: str, path: Path, loader: Callable[..., T]) -> T | None:
    if not path.is_file():
        problems.append(f"{shown}: no such file")
        return None
    try:
        return loader(path, display=shown)
    except LlmopsError as exc:
        problems.append(f"{shown}: {exc}")
        return None


def _suites(ws: Workspace, problems: list[str]) -> tuple[SuiteFile, ...]:
    out = []
    for path in sorted(ws.asset_dir("evals").glob("*.yaml")):
        try:
            suite, _, case_bytes = load_suite(path)
        except (LlmopsError, OSError) as exc:
            problems.append(f"{ws.shown(path)}: {exc}")
            continue
        out.append(SuiteFile(ws.shown(path), suite, suite.suite_hash(case_bytes)))
    return tuple(out)


def _audit(registry: Registry, lineage: ReleaseLineage, route: str) -> tuple[AuditRecord, ...]:
    objects = [route]
    release = lineage.release
    objects += [ref.name for ref in (release.adapter, release.prompt) if ref is not None]
    seen: dict[str, AuditRecord] = {}
    for name in dict.fromkeys(objects):
        for record in settled(registry.audit.records(name, limit=AUDIT_LIMIT)):
            seen.setdefault(record.record_id or f"{name}:{record.timestamp_ms}", record)
    return tuple(sorted(seen.values(), key=lambda r: (r.timestamp_ms, r.record_id or ""), reverse=True))


def gather(registry: Registry, ws: Workspace, route: str, stage: str) -> ReportInputs:
    """Everything the documents state about ``route``'s release at ``stage``; NoReleaseAtStage when there is none."""
    recorded = registry.pointers.at_stage(route, stage)
    if recorded is None:
        raise NoReleaseAtStage(route, stage, f"nothing to document (`llmops promote {route} --to {stage}` sets one)")
    lineage = release_lineage(registry, recorded.release, eval_records=recorded.eval_records)
    problems: list[str] = []
    reports = {ev.run_id: registry.evals.artifact_json(ev.run_id, "report.json") for ev in lineage.evals}
    problems += [f"eval record {run_id}: no report.json artifact" for run_id, r in reports.items() if r is None]
    serving = ws.asset_dir("serving")
    retention = ws.settings.retention
    return ReportInputs(
        route=route,
        stage=stage,
        pointer_version=recorded.version,
        lineage=lineage,
        audit=_audit(registry, lineage, route),
        route_state=registry.routes.read(route),
        gateway=_load(problems, GATEWAY_FILE, serving / "gateway.yaml", load_gateway_file),
        rollout=_load(problems, ROLLOUT_FILE, serving / "rollout.yaml", load_rollout_file),
        monitor=_load(problems, MONITOR_FILE, serving / "monitor.yaml", load_monitor_file),
        suites=_suites(ws, problems),
        eval_reports={run_id: r for run_id, r in reports.items() if isinstance(r, dict)},
        retention={
            "request_logs_days": retention.request_logs_days,
            "feedback_days": retention.feedback_days,
            "audit_days": retention.audit_days,
        },
        generated_ms=int(time.time() * 1000),
        problems=tuple(problems),
    )
