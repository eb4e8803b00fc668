"""``llmops monitor run``: one pass over the logs, every signal of every window, the rules, reports, records.

:func:`run_monitor` streams the request log once into windows (:mod:`llmops.monitor.windows`), builds
each route's reference (:mod:`llmops.monitor.reference`), evaluates the signals
(:mod:`llmops.monitor.signals`) per window: input-side ones route-wide, the rest per target, the window's
p-value tests corrected together (:mod:`llmops.monitor.multitest`); then the alert rules
(:mod:`llmops.monitor.alerts`). With ``record`` it writes a monitoring record per route to MLflow and fires
the rules that hold (:mod:`llmops.monitor.triggers`); without, rules are evaluated and reported but nothing
fires and nothing is written to the registry. Reports go under ``<home>/<output_dir>/<route>/<UTC timestamp>/``
(:mod:`llmops.monitor.report`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llmops.config.monitor import MonitorFile, parse_duration
from llmops.config.workspace import Workspace
from llmops.errors import ConfigError, LlmopsError
from llmops.events import SILENT, Reporter
from llmops.monitor.alerts import evaluate_rules
from llmops.monitor.embeddings import Embedder, MiniLMEmbedder
from llmops.monitor.levels import ALL_TARGETS, LEVEL_VALUES, SignalResult
from llmops.monitor.model import FeedbackCounts, MonitorRun, RouteResult, WindowResult
from llmops.monitor.multitest import correct_window
from llmops.monitor.reference import RouteReference, build_reference
from llmops.monitor.report import write_reports
from llmops.monitor.signals import WindowSample, input_signals, output_signals
from llmops.monitor.windows import RouteWindow, collect
from llmops.registry import Registry, connect
from llmops.registry.monitoring import metric_key
from llmops.release import Release

MONITOR_FILE = "serving/monitor.yaml"


@dataclass
class CountingEmbedder:
    """An embedder that counts the texts it is asked to encode and the seconds it takes."""

    inner: Embedder
    texts: int = 0
    seconds: float = 0.0
    distinct: set[int] = field(default_factory=set)  # hashes of the texts asked for (the embedder caches repeats)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        started = time.perf_counter()
        try:
            return self.inner.encode(texts)
        finally:
            self.texts += len(texts)
            self.distinct.update(hash(t) for t in texts)
            self.seconds += time.perf_counter() - started


@dataclass
class _Registry:
    """The registry, connected on first use (runs that need none never connect)."""

    ws: Workspace
    _registry: Registry | None = field(default=None, init=False)

    def __call__(self) -> Registry:
        if self._registry is None:
            self._registry = connect(self.ws)
        return self._registry


def _targets(windows: list[RouteWindow]) -> list[str]:
    seen: dict[str, None] = {}
    for window in windows:
        for name in window.targets:
            seen.setdefault(name, None)
    return list(seen)


def _evaluate(
    spec: MonitorFile, route: str, windows: list[RouteWindow], ref: RouteReference, embedder: Embedder
) -> list[WindowResult]:
    signals = spec.routes[route].signals
    targets = _targets(windows)
    out = []
    # one seed for every window: each draws the same reference subsample, so it is embedded once (cached)
    seed = spec.seed
    for window in windows:
        results = input_signals(
            ref.sample(ALL_TARGETS), WindowSample(ALL_TARGETS, inputs=window.inputs.items), signals, embedder, seed=seed
        )
        for target in targets:
            part = window.targets.get(target)
            live = WindowSample(target)
            if part is not None:
                live = WindowSample(
                    target,
                    outputs=part.outputs.items,
                    latencies_ms=part.latencies_ms,
                    ttfts_ms=part.ttfts_ms,
                    statuses=part.statuses,
                    corrections=part.corrections,
                    feedback_scores=part.feedback_scores,
                )
            results += output_signals(ref.sample(target), live, signals, embedder, seed=seed)
        results = correct_window(results, signals.descriptors.correction)  # the window's tests as one family
        out.append(WindowResult(window.start, window.end, window.requests, window.captured, results))
    return out


def _serving(ref: RouteReference) -> dict[str, tuple[str, str]]:
    """Each target's current (adapter version, prompt version), as the request log writes them."""
    return {
        t: (str(info.get("adapter_version", "")), str(info.get("prompt_version", "")))
        for t, info in ref.releases.items()
        if "canonical" in info
    }


def _earlier(windows: list[RouteWindow]) -> list[str]:
    """A note per target whose newest window holds requests an earlier release served."""
    latest = windows[-1] if windows else None
    return [
        f"target {t}: {part.earlier_release} request(s) of the newest window were served by an earlier release;"
        " their answers are left out of the output signals"
        for t, part in (latest.targets.items() if latest else ())
        if part.earlier_release
    ]


def _releases(ref: RouteReference, windows: list[RouteWindow]) -> dict[str, dict[str, Any]]:
    """Each target's release: from the registry when the reference read it, else as the newest log record says."""
    found: dict[str, dict[str, Any]] = {}
    for window in windows:
        for name, part in window.targets.items():
            if part.release:
                found[name] = dict(part.release)
    for name, info in ref.releases.items():
        found[name] = {**found.get(name, {}), **info}
    return found


def _feedback(windows: list[RouteWindow], orphaned: int) -> dict[str, FeedbackCounts]:
    counts = {ALL_TARGETS: FeedbackCounts(orphaned=orphaned)}
    if windows:
        for name, part in windows[-1].targets.items():
            counts[name] = FeedbackCounts(part.feedback_received, part.feedback_corrections, 0)
    return counts


def metrics_of(result: RouteResult) -> dict[str, float]:
    """The newest window's figures as MLflow metrics (values and levels)."""
    metrics: dict[str, float] = {}
    latest = result.latest
    for r in latest.results if latest is not None else []:
        key = metric_key(r.target, r.signal)
        metrics[f"{key}/level"] = float(LEVEL_VALUES[r.level])
        if r.value is not None:
            metrics[key] = float(r.value)
        metrics[f"{key}/samples"] = float(r.samples)
    for target, fb in result.feedback.items():
        for kind in ("received", "with_correction", "orphaned"):
            metrics[f"{metric_key(target, 'feedback')}/{kind}"] = float(getattr(fb, kind))
    if latest is not None:
        metrics["requests"] = float(latest.requests)
        metrics["captured"] = float(latest.captured)
    return metrics


def _alert_summary(firing: Any) -> dict[str, Any]:
    return {
        "rule": firing.rule.name,
        "level": firing.level,
        "for": firing.rule.for_,
        "window": [firing.start, firing.end],
        "signals": [f"{r.target}/{r.signal}" for r in firing.results],
        "actions": list(firing.rule.actions),
    }


def _record(registry: Registry, result: RouteResult, folder: Path) -> str:
    releases = {
        t: Release.from_canonical(info["canonical"]) for t, info in result.release.items() if "canonical" in info
    }
    return registry.monitoring.log(
        route=result.route,
        level=result.level,
        releases=releases,
        metrics=metrics_of(result),
        params={"windows": len(result.windows), "reference_rows": result.reference_rows},
        artifacts=[p for p in (folder / "report.json", folder / "report.html") if p.is_file()],
    )


def _fire(
    registry: Callable[[], Registry], ws: Workspace, spec: MonitorFile, result: RouteResult, firings: list[Any],
    reporter: Reporter, errors: list[str],
) -> None:  # fmt: skip
    from llmops.monitor.triggers import fire

    for firing in firings:
        try:
            record = fire(registry(), spec, firing, result, ws=ws, reporter=reporter)
        except LlmopsError as exc:
            errors.append(f"route {result.route}: rule {firing.rule.name}: {exc}")
            continue
        if record is not None:
            result.triggers.append(record)


def run_monitor(
    ws: Workspace,
    spec: MonitorFile,
    *,
    routes: Sequence[str] | None = None,
    window: str | None = None,
    until: float | None = None,
    output_dir: Path | None = None,
    record: bool = True,
    embedder: Embedder | None = None,
    reporter: Reporter = SILENT,
) -> MonitorRun:
    """Evaluate the routes of ``spec`` (or ``routes``) over the logs; write reports (and records, triggers)."""
    started = time.time()
    names = list(routes) if routes else list(spec.routes)
    unknown = [r for r in names if r not in spec.routes]
    if unknown:
        known = ", ".join(spec.routes)
        raise ConfigError.at(MONITOR_FILE, f"no route {', '.join(unknown)} in the monitor spec (it has: {known})")
    window_s = parse_duration(window) if window else None
    end = until if until is not None else started
    registry = _Registry(ws)
    counting = CountingEmbedder(embedder or MiniLMEmbedder())
    refs: dict[str, RouteReference] = {}
    for name in names:
        with reporter.waiting(f"route {name}: building the reference"):
            refs[name] = build_reference(ws, spec, name, registry)
    with reporter.waiting("reading the request and feedback logs"):
        collected = collect(
            spec, str(ws.home / spec.request_log), str(ws.home / spec.feedback_log),
            routes=names, until=end, window_s=window_s, serving={n: _serving(r) for n, r in refs.items()},
        )  # fmt: skip
    read_s = time.time() - started
    run = MonitorRun(routes={}, started=started, finished=started, records_read=collected.records_read,
                     lines_skipped=collected.lines_skipped)  # fmt: skip
    if collected.lines_skipped:
        reporter.note(f"{collected.lines_skipped} partial or malformed log line(s) skipped")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started))
    root = output_dir or ws.home / spec.output_dir
    for name in names:
        windows = collected.windows[name]
        ref = refs[name]
        task = reporter.task(f"route {name}: signals", len(windows))
        try:
            results = []
            for i, window_result in enumerate(_evaluate(spec, name, windows, ref, counting)):
                results.append(window_result)
                task.update(i + 1)
        finally:
            task.close()
        result = RouteResult(
            route=name, windows=results, release=_releases(ref, windows),
            feedback=_feedback(windows, collected.orphaned), reference_rows=len(ref.inputs),
            notes=list(ref.notes) + _earlier(windows),
        )  # fmt: skip
        firings = evaluate_rules(name, spec.routes[name].alerts, results)
        result.alerts = [{**_alert_summary(f), "fired": record} for f in firings]
        if record:
            _fire(registry, ws, spec, result, firings, reporter, run.errors)
        run.routes[name] = result
    run.finished = time.time()
    run.report_dir = root
    run.stats = {
        "feedback_read": float(collected.feedback_read),
        "feedback_orphaned": float(collected.orphaned),
        "read_seconds": round(read_s, 3),
        "texts_embedded": float(counting.texts),
        "texts_distinct": float(len(counting.distinct)),
        "embed_seconds": round(counting.seconds, 3),
        "seconds": round(run.finished - started, 3),
    }
    for name, result in run.routes.items():
        folder = write_reports(run, result, refs[name], root / name, stamp)
        if record:
            result.record_id = _record(registry(), result, folder)
    return run


def level_of(results: Sequence[SignalResult]) -> str:
    """The worst level among ``results`` (for the status line)."""
    return max((r.level for r in results), key=lambda lv: LEVEL_VALUES[lv], default="insufficient_data")
