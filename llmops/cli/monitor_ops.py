"""``llmops monitor serve`` and ``llmops monitor probe`` (registered on the ``monitor`` group by :mod:`llmops.cli.monitor`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from llmops.cli.common import JsonOpt, WorkspaceOpt, console, err_console, print_json, stop_requested, workspace
from llmops.cli.render import RichReporter
from llmops.config.monitor import load_monitor_file
from llmops.extras import require

MONITOR_FILE = "serving/monitor.yaml"
_STYLE = {"ok": "green", "warn": "yellow", "alert": "red", "insufficient_data": "dim"}

ConfigOpt = Annotated[Path | None, typer.Option(help=f"Monitor spec; default: {MONITOR_FILE}.")]


def serve(
    config: ConfigOpt = None,
    interval: Annotated[
        float | None, typer.Option(help="Seconds between runs; default: the spec's interval_s.", min=1)
    ] = None,
    host: Annotated[str, typer.Option(help="Address of the Prometheus endpoint (/metrics, /healthz).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the Prometheus endpoint.")] = 9108,
    once: Annotated[bool, typer.Option("--once", help="One cycle (run, probe when due), then exit.")] = False,
    gateway_url: Annotated[
        str | None,
        typer.Option(help="Gateway URL for the bias probe (…/v1); default: LLMOPS_GATEWAY_URL or gateway.yaml."),
    ] = None,
    key_env: Annotated[str, typer.Option(help="Environment variable holding the gateway key for the probe.")] = (
        "LLMOPS_GATEWAY_KEY"
    ),
    ws_path: WorkspaceOpt = None,
) -> None:
    """Run the monitor on an interval and export its gauges to Prometheus until Ctrl-C or SIGTERM.

    Each cycle is a `llmops monitor run` (records, triggers, actions); a failing run is counted in
    llmops_monitor_run_errors_total and the loop goes on. Routes with signals.bias get a bias probe every
    `every`. Scrape http://HOST:PORT/metrics. With --once, exit code 2 when the run or probe failed.

    Example: llmops monitor serve --interval 300 --port 9108
    """
    require("monitor serve", "monitor")
    from llmops.monitor.serve import ServeOptions, serve_monitor

    ws = workspace(ws_path)
    spec = load_monitor_file(config or ws.root / MONITOR_FILE, display=str(config) if config else MONITOR_FILE)
    out = console()
    stop = stop_requested()
    opts = ServeOptions(
        interval_s=interval or spec.interval_s, host=host, port=port, once=once, gateway_url=gateway_url,
        api_key=os.environ.get(key_env) or None,
    )  # fmt: skip

    def ready(bound: int) -> None:
        out.print(f"monitor metrics on http://{host}:{bound}/metrics (every {opts.interval_s:g} s; Ctrl-C stops)")

    stats = serve_monitor(ws, spec, opts, stop, reporter=RichReporter(out), on_ready=ready)
    out.print(f"stopped after {stats.runs} run(s), {stats.failures} failed, {stats.probes} bias probe(s)")
    for line in stats.undelivered:
        out.print(f"[yellow]undelivered:[/yellow] {line}")
    if once and stats.failures:
        raise typer.Exit(2)


def probe(
    route: Annotated[str, typer.Argument(help="Route to probe, e.g. support-triage.")],
    gateway_url: Annotated[
        str | None, typer.Option(help="Gateway URL (…/v1); default: LLMOPS_GATEWAY_URL or serving/gateway.yaml.")
    ] = None,
    key_env: Annotated[str, typer.Option(help="Environment variable holding the gateway key.")] = "LLMOPS_GATEWAY_KEY",
    config: ConfigOpt = None,
    no_record: Annotated[bool, typer.Option("--no-record", help="Write no probe record to MLflow.")] = False,
    as_json: JsonOpt = False,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Replay the route's bias suite's counterfactual cases through the gateway; report change rate and gap.

    The thresholds are signals.bias in the monitor spec, else the suite's bias gates. Exit code: 0 ok,
    1 a bias figure at alert level, 2 an error.

    Example: llmops monitor probe support-triage --gateway-url http://127.0.0.1:8080/v1
    """
    require("monitor probe", "evals")
    from llmops.monitor.probe import default_gateway_url, run_probe
    from llmops.registry import connect

    ws = workspace(ws_path)
    spec = load_monitor_file(config or ws.root / MONITOR_FILE, display=str(config) if config else MONITOR_FILE)
    out = err_console() if as_json else console()
    url = gateway_url or default_gateway_url(ws)
    result = run_probe(
        connect(ws), spec, route, gateway_url=url, api_key=os.environ.get(key_env) or None,
        record=not no_record, reporter=RichReporter(out),
    )  # fmt: skip
    if as_json:
        print_json({
            "route": result.route, "suite": result.suite, "release": result.release, "level": result.level,
            "variants": result.variants, "errors": result.errors, "group_scores": result.group_scores,
            "record_id": result.record_id, "results": [r.as_dict() for r in result.results],
        })  # fmt: skip
    else:
        table = Table("signal", "value", "threshold", "level", "samples", title=f"bias probe: {route}")
        for r in result.results:
            style = _STYLE[r.level]
            value = "—" if r.value is None else f"{r.value:.4g}"
            limit = "—" if r.threshold is None else f"{r.threshold:.4g}"
            table.add_row(r.signal, value, limit, f"[{style}]{r.level}[/{style}]", str(r.samples))
        out.print(table)
        out.print(f"suite {result.suite}; release {result.release.get('label', '')}; {result.errors} error(s)")
        if result.record_id:
            out.print(f"record: {result.record_id}")
    if result.level == "alert":
        raise typer.Exit(1)
