"""Monitoring reports of one route: ``report.json`` (every window and signal) and a self-contained ``report.html``.

Written to ``<output dir>/<route>/<UTC timestamp>/``; ``<output dir>/<route>/latest`` points at the newest
(a symlink, or a copy where links cannot be made). The HTML inlines its plots (matplotlib, Agg, PNG):
drift per window, the newest window's descriptor histograms reference vs live, latency per window.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmops.monitor.levels import LEVEL_VALUES, SignalResult
from llmops.monitor.model import MonitorRun, RouteResult
from llmops.monitor.reference import RouteReference

LATEST = "latest"
_COLORS = {"ok": "#2a7", "warn": "#d90", "alert": "#c22", "insufficient_data": "#888"}


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _safe(value: Any) -> Any:
    """JSON-able ``value``: numpy scalars and arrays as numbers and lists; NaN and infinities as None."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_safe(v) for v in value]
    return value


def to_json(run: MonitorRun, result: RouteResult, ref: RouteReference | None) -> dict[str, Any]:
    return _safe(
        {
            "route": result.route,
            "level": result.level,
            "generated": iso(run.finished),
            "records_read": run.records_read,
            "lines_skipped": run.lines_skipped,
            "stats": run.stats,
            "errors": run.errors,
            "release": result.release,
            "reference": {
                "rows": result.reference_rows,
                "outputs": {t: len(o) for t, o in (ref.outputs.items() if ref else [])},
                "sources": ref.sources if ref else [],
                "notes": result.notes,
            },
            "feedback": {t: vars(fb) for t, fb in result.feedback.items()},
            "windows": [
                {
                    "start": w.start,
                    "end": w.end,
                    "start_iso": iso(w.start),
                    "end_iso": iso(w.end),
                    "requests": w.requests,
                    "captured": w.captured,
                    "level": w.level,
                    "results": [r.as_dict() for r in w.results],
                }
                for w in result.windows
            ],
            "alerts": result.alerts,
            "triggers": result.triggers,
        }
    )


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _per_window(result: RouteResult, prefixes: tuple[str, ...], title: str, ylabel: str) -> str | None:
    """A line per (target, signal) whose name starts with one of ``prefixes``, over the windows."""
    series: dict[str, list[float]] = {}
    thresholds: dict[str, float] = {}
    for i, window in enumerate(result.windows):
        for r in window.results:
            if r.signal.startswith(prefixes):
                key = f"{r.target}/{r.signal}"
                series.setdefault(key, [math.nan] * len(result.windows))[i] = math.nan if r.value is None else r.value
                if r.threshold is not None:
                    thresholds[key] = r.threshold
    if not series or all(all(math.isnan(v) for v in vals) for vals in series.values()):
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    labels = [iso(w.end)[5:16] for w in result.windows]
    for key, values in series.items():
        line = ax.plot(labels, values, marker="o", label=key)[0]
        if key in thresholds:
            ax.axhline(thresholds[key], color=line.get_color(), linestyle=":", linewidth=1)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", rotation=20)
    ax.legend(fontsize=7)
    return _png(fig)


def _histogram(r: SignalResult) -> str | None:
    """Reference vs live of a descriptor result of the newest window (from its details)."""
    d = r.details
    plt = _plt()
    if "bin_edges" in d:
        edges = list(d["bin_edges"])
        ref, live = list(d["reference_histogram"]), list(d["live_histogram"])
        ref_total, live_total = max(1, sum(ref)), max(1, sum(live))
        fig, ax = plt.subplots(figsize=(4.5, 2.8))
        widths = [b - a for a, b in zip(edges[:-1], edges[1:], strict=True)]
        ax.bar(edges[:-1], [v / ref_total for v in ref], widths, align="edge", alpha=0.5, label="reference")
        ax.bar(edges[:-1], [v / live_total for v in live], widths, align="edge", alpha=0.5, label="live")
    elif "categories" in d:
        cats = [str(c) for c in d["categories"]]
        ref_counts, live_counts = dict(d["reference_counts"]), dict(d["live_counts"])
        ref_total, live_total = max(1, sum(ref_counts.values())), max(1, sum(live_counts.values()))
        fig, ax = plt.subplots(figsize=(4.5, 2.8))
        xs = range(len(cats))
        ax.bar([x - 0.2 for x in xs], [ref_counts.get(c, 0) / ref_total for c in cats], 0.4, label="reference")
        ax.bar([x + 0.2 for x in xs], [live_counts.get(c, 0) / live_total for c in cats], 0.4, label="live")
        ax.set_xticks(list(xs), cats, rotation=25, ha="right", fontsize=7)
    else:
        return None
    ax.set_title(f"{r.target}/{r.signal}: {r.level}", fontsize=9)
    ax.legend(fontsize=7)
    return _png(fig)


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.4g}"


def _p(r: SignalResult) -> str:
    """A result's raw p-value, and the adjusted one with its method when the window's tests were corrected."""
    if r.correction is None or r.p_value_adjusted is None:
        return _fmt(r.p_value)
    tests = r.details.get("family_tests")
    return f"{_fmt(r.p_value)} → {_fmt(r.p_value_adjusted)} ({html.escape(r.correction)}, {tests} tests)"


def to_html(run: MonitorRun, result: RouteResult) -> str:
    images: list[tuple[str, str]] = []
    for title, prefixes, ylabel in (
        ("drift per window (ROC AUC)", ("input_drift", "output_drift"), "ROC AUC"),
        ("latency per window", ("latency.",), "ms"),
        ("error rate per window", ("errors.",), "share"),
    ):
        png = _per_window(result, prefixes, title, ylabel)
        if png:
            images.append((title, png))
    latest = result.latest
    for r in latest.results if latest else []:
        if r.signal.startswith(("input.", "output.", "field.")) and r.level != "insufficient_data":
            png = _histogram(r)
            if png:
                images.append((f"{r.target}/{r.signal} (newest window, reference vs live)", png))
    rows = "".join(
        f"<tr><td>{html.escape(r.target)}</td><td>{html.escape(r.signal)}</td><td>{_fmt(r.value)}</td>"
        f"<td>{_fmt(r.threshold)}</td><td style='color:{_COLORS[r.level]}'>{r.level}</td><td>{r.samples}</td>"
        f"<td>{html.escape(r.statistic)}</td><td>{_p(r)}</td></tr>"
        for r in sorted(latest.results if latest else [], key=lambda r: -LEVEL_VALUES[r.level])
    )
    windows = "".join(
        f"<tr><td>{iso(w.start)}</td><td>{iso(w.end)}</td><td>{w.requests}</td><td>{w.captured}</td>"
        f"<td style='color:{_COLORS[w.level]}'>{w.level}</td></tr>"
        for w in result.windows
    )
    alerts = (
        "".join(
            f"<li>{html.escape(a['rule'])}: {a['level']} for {a['for']} window(s) on {html.escape(', '.join(a['signals']))}"
            f"{'' if a['fired'] else ' (not fired: --no-record)'}</li>"
            for a in result.alerts
        )
        or "<li>none</li>"
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in result.notes)
    figs = "".join(
        f"<h3>{html.escape(t)}</h3><img alt='{html.escape(t)}' src='data:image/png;base64,{b}'>" for t, b in images
    )
    releases = "".join(
        f"<li>{html.escape(t)}: {html.escape(str(info.get('label') or info))}</li>"
        for t, info in result.release.items()
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>llmops monitor {html.escape(result.route)}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left}}</style>
</head><body><h1>{html.escape(result.route)}: <span style="color:{_COLORS[result.level]}">{result.level}</span></h1>
<p>generated {iso(run.finished)}; {run.records_read} records read, {run.lines_skipped} line(s) skipped;
reference: {result.reference_rows} input rows</p><ul>{releases}</ul>{f"<ul>{notes}</ul>" if notes else ""}
<h2>Alert rules that hold</h2><ul>{alerts}</ul>
<h2>Newest window</h2><table><tr><th>target</th><th>signal</th><th>value</th><th>threshold</th><th>level</th>
<th>samples</th><th>statistic</th><th>p-value (raw → adjusted)</th></tr>{rows}</table>
<h2>Windows</h2><table><tr><th>start</th><th>end</th><th>requests</th><th>captured</th><th>level</th></tr>{windows}</table>
<h2>Plots</h2>{figs}</body></html>"""


def _point_latest(route_dir: Path, folder: Path) -> None:
    link = route_dir / LATEST
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.is_dir():
        shutil.rmtree(link)
    try:
        link.symlink_to(folder.name, target_is_directory=True)
    except OSError:
        shutil.copytree(folder, link)


def write_reports(
    run: MonitorRun, result: RouteResult, ref: RouteReference | None, route_dir: Path, stamp: str
) -> Path:
    """Write ``report.json`` and ``report.html`` under ``route_dir/stamp``; point ``latest`` at it; return the folder."""
    folder = route_dir / stamp
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(to_json(run, result, ref), indent=2))
    (folder / "report.html").write_text(to_html(run, result))
    _point_latest(route_dir, folder)
    return folder
