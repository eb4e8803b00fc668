"""``llmops monitor …``: watch production traffic against each route's reference (serving/monitor.yaml)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from llmops.cli.common import JsonOpt, WorkspaceOpt, console, err_console, print_json, stdout_to_stderr, workspace
from llmops.cli.render import RichReporter
from llmops.config.monitor import load_monitor_file
from llmops.errors import ConfigError
from llmops.extras import require
from llmops.monitor.levels import LEVEL_VALUES

MONITOR_FILE = "serving/monitor.yaml"
_STYLE = {"ok": "green", "warn": "yellow", "alert": "red", "insufficient_data": "dim"}

app = typer.Typer(
    help="Production monitoring: drift, live quality, latency and feedback on gateway traffic; alerts and triggers.",
    no_args_is_help=True,
)

DELIVERY_WAIT_S = 10.0  # how long a one-shot run waits for webhook deliveries before exiting


def parse_until(value: str | None) -> float | None:
    """``--until``: epoch seconds or an ISO-8601 time (``2026-11-30T10:00:00Z``; naive times are UTC)."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError.at(
            "--until", f"{value!r}: give epoch seconds or an ISO-8601 time, e.g. 2026-11-30T10:00:00Z"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def _as_json(run: Any) -> dict[str, Any]:
    from llmops.monitor.report import to_json

    return {
        "level": run.level,
        "records_read": run.records_read,
        "lines_skipped": run.lines_skipped,
        "report_dir": str(run.report_dir) if run.report_dir else None,
        "errors": run.errors,
        "stats": run.stats,
        "routes": {
            name: {**to_json(run, result, None), "record_id": result.record_id} for name, result in run.routes.items()
        },
    }


@app.command("run")
def run_cmd(
    route: Annotated[
        list[str] | None, typer.Option("--route", "-r", help="Only this route (repeatable); default: every route.")
    ] = None,
    window: Annotated[
        str | None, typer.Option(help="Window length instead of the spec's (e.g. 15m, 1h, 1d); the spec's count.")
    ] = None,
    config: Annotated[Path | None, typer.Option(help=f"Monitor spec; default: {MONITOR_FILE}.")] = None,
    until: Annotated[
        str | None, typer.Option(help="End of the newest window: ISO-8601 (UTC) or epoch seconds; default: now.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Reports folder; default: the spec's output_dir.")
    ] = None,
    no_record: Annotated[
        bool,
        typer.Option("--no-record", help="Write no MLflow record and fire no trigger (rules are still shown)."),
    ] = False,
    as_json: JsonOpt = False,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Evaluate each route's newest windows once, for cron or CI.

    Prints a status table, writes report.json + report.html, records the run in MLflow (experiment
    llmops-monitoring) and fires the triggers of alert rules that hold (not with --no-record).

    Exit code: 0 no signal at alert level, 1 some signal at alert level, 2 an error (config, registry,
    a trigger that could not be recorded).

    Example: llmops monitor run --route support-triage --window 1h

    Example: llmops monitor run --no-record --json > monitor.json
    """
    require("monitor run", "monitor")
    from llmops.monitor.runner import run_monitor

    ws = workspace(ws_path)
    spec_path = config or ws.root / MONITOR_FILE
    shown = str(config) if config else MONITOR_FILE
    spec = load_monitor_file(spec_path, display=shown)
    out = err_console() if as_json else console()
    with stdout_to_stderr(as_json):
        run = run_monitor(
            ws, spec, routes=route or None, window=window, until=parse_until(until), output_dir=output,
            record=not no_record, reporter=RichReporter(out),
        )  # fmt: skip
    alert = any(r.level == "alert" for res in run.routes.values() if res.latest for r in res.latest.results)
    if any(res.triggers for res in run.routes.values()):
        from llmops.monitor.triggers import wait_for_actions

        # webhooks retry in background threads: give them a bounded time before this one-shot process exits
        for line in wait_for_actions(DELIVERY_WAIT_S):
            out.print(f"[yellow]undelivered:[/yellow] {line}", soft_wrap=True)
    if as_json:
        print_json(_as_json(run))
    else:
        _print(out, run)
    if run.errors:
        raise typer.Exit(2)
    if alert:
        raise typer.Exit(1)


def _print(out: Any, run: Any) -> None:
    table = Table("route", "target", "signal", "value", "threshold", "level", "samples", title="newest window")
    for name, result in run.routes.items():
        latest = result.latest
        for r in sorted(latest.results if latest else [], key=lambda r: (-LEVEL_VALUES[r.level], r.target, r.signal)):
            style = _STYLE[r.level]
            table.add_row(
                name,
                r.target,
                r.signal,
                _fmt(r.value),
                _fmt(r.threshold),
                f"[{style}]{r.level}[/{style}]",
                str(r.samples),
            )
    out.print(table)
    out.print(f"{run.records_read} records read, {run.lines_skipped} partial line(s) skipped")
    for name, result in run.routes.items():
        latest = result.latest
        if latest is not None:
            out.print(
                f"{name}: newest window {latest.requests} requests ({latest.captured} captured); level {result.level}"
            )
        for note in result.notes:
            out.print(f"  note: {note}", markup=False)
        for alert in result.alerts:
            fired = "fired" if alert["fired"] else "not fired (--no-record)"
            out.print(f"  [red]alert rule {alert['rule']}[/red] holds ({alert['level']}, for {alert['for']}): {fired}")
        for trigger in result.triggers:
            out.print(f"  trigger {trigger.get('run_id')} ({trigger.get('rule')})", markup=False)
        if result.record_id:
            out.print(f"  record: {result.record_id}")
    for error in run.errors:
        out.print(f"[red]error:[/red] {error}")
    if run.report_dir:
        out.print(f"reports: {run.report_dir}/<route>/latest/report.html")


# `monitor serve` (interval + Prometheus exporter) and `monitor probe` (live bias) live in their own module
from llmops.cli import monitor_ops  # noqa: E402

app.command("serve")(monitor_ops.serve)
app.command("probe")(monitor_ops.probe)
