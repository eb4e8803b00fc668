"""What one monitoring run found: per route, its windows (oldest first) and each window's signal results.

Built by :func:`llmops.monitor.runner.run_monitor`; read by the reports, the alert rules
(:mod:`llmops.monitor.alerts`), the Prometheus exporter and the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmops.monitor.levels import Level, SignalResult, worst


@dataclass(frozen=True)
class WindowResult:
    """One window of one route: its bounds (epoch seconds), request count and signal results."""

    start: float
    end: float
    requests: int
    captured: int
    results: list[SignalResult] = field(default_factory=list)

    @property
    def level(self) -> Level:
        return worst([r.level for r in self.results])


@dataclass(frozen=True)
class FeedbackCounts:
    """Feedback of one target in the newest window (orphaned: no request of that id in the logs read)."""

    received: int = 0
    with_correction: int = 0
    orphaned: int = 0


@dataclass
class RouteResult:
    """A route's windows (oldest first; the newest is what the status table shows) and what they led to."""

    route: str
    windows: list[WindowResult]
    release: dict[str, Any] = field(default_factory=dict)  # target -> {"adapter_version", "prompt_version", ...}
    feedback: dict[str, FeedbackCounts] = field(default_factory=dict)  # target -> counts
    triggers: list[dict[str, Any]] = field(default_factory=list)  # trigger records written by this run
    reference_rows: int = 0
    alerts: list[dict[str, Any]] = field(default_factory=list)  # rules that hold (fired or, with --no-record, not)
    notes: list[str] = field(default_factory=list)  # what the reference lacks (e.g. no eval outputs)
    record_id: str | None = None  # the route's MLflow monitoring record

    @property
    def latest(self) -> WindowResult | None:
        return self.windows[-1] if self.windows else None

    @property
    def level(self) -> Level:
        latest = self.latest
        return latest.level if latest is not None else "insufficient_data"


@dataclass
class MonitorRun:
    """One `llmops monitor run`: every route it looked at, where the reports went, the MLflow record."""

    routes: dict[str, RouteResult]
    started: float
    finished: float
    records_read: int = 0
    lines_skipped: int = 0
    report_dir: Path | None = None
    record_id: str | None = None  # the MLflow monitoring run
    errors: list[str] = field(default_factory=list)
    stats: dict[str, float] = field(default_factory=dict)  # feedback read, orphaned, texts embedded, seconds

    @property
    def level(self) -> Level:
        return worst([r.level for r in self.routes.values()])
