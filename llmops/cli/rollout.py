"""``llmops rollout start | resume | abort | status``: progressive delivery of a release on evidence."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from llmops.cli.common import JsonOpt, WorkspaceOpt, console, err_console, print_json, stdout_to_stderr, workspace
from llmops.cli.render import RichReporter
from llmops.extras import require
from llmops.names import check_name
from llmops.validate import ROLLOUT_FILE

if TYPE_CHECKING:  # the rollout's statistics (numpy, scipy, scikit-learn) load only when a rollout command runs
    from llmops.rollout import service
    from llmops.rollout.controller import RolloutOutcome
    from llmops.rollout.state import RolloutState

app = typer.Typer(
    help="Roll a release out step by step (canary 10% -> 50% -> 100%), judged against stable on live traffic.",
    no_args_is_help=True,
)

RouteArg = Annotated[str, typer.Argument(help="Route name in serving/gateway.yaml, e.g. support-triage.")]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help=f"Rollout spec (default: {ROLLOUT_FILE}).", show_default=False)
]
MetricsOpt = Annotated[
    int | None,
    typer.Option("--metrics-port", help="Serve llmops_rollout_* gauges on 127.0.0.1:PORT/metrics while it runs."),
]
IntervalOpt = Annotated[
    float | None, typer.Option("--interval", min=0.2, help="Seconds between looks (default: the spec's interval_s).")
]


def _service() -> Any:
    """``llmops.rollout.service``, once the monitor extra it needs is known to be installed."""
    require("rollout", "monitor", "numpy", "scipy", "sklearn")
    from llmops.rollout import service

    return service


def _options(config: Path | None, metrics_port: int | None, interval: float | None, quiet: bool) -> service.Options:
    from llmops.rollout import service
    from llmops.rollout.metrics import RolloutExporter

    exporter = RolloutExporter()
    if metrics_port is not None:
        exporter.serve(metrics_port)
    reporter = RichReporter(err_console() if quiet else console())
    return service.Options(config=config, reporter=reporter, observer=exporter, interval_s=interval,
                           embedder=_embedder)  # fmt: skip


def _embedder() -> Any:
    from llmops.monitor.embeddings import MiniLMEmbedder

    return MiniLMEmbedder()


def _finish(outcome: RolloutOutcome, as_json: bool) -> None:
    if as_json:
        print_json({"rollout": outcome.rollout_id, "status": outcome.status, "state": outcome.state.to_dict()})
    else:
        colour = {"succeeded": "green", "paused": "yellow"}.get(outcome.status, "red")
        console().print(f"[{colour}]rollout {outcome.status}[/{colour}] ({outcome.rollout_id}): {outcome.state.reason}")
        if outcome.status == "paused":
            route = outcome.state.route
            console().print(
                f"  continue with `llmops rollout resume {route}` or stop with `llmops rollout abort {route}`"
            )
    raise typer.Exit(outcome.exit_code)


@app.command()
def start(
    route: RouteArg,
    adapter: Annotated[str | None, typer.Option(help="Adapter version NAME/VERSION (omit for the base model).")] = None,
    prompt: Annotated[str | None, typer.Option(help="Prompt version NAME/VERSION.")] = None,
    steps: Annotated[
        str | None, typer.Option(help="Canary weights per step, e.g. 10,50,100 (other step fields from the spec).")
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Skip the eval-record check (needs --reason; every promotion audited as forced).")
    ] = False,
    reason: Annotated[str, typer.Option(help="Why --force; kept in the audit log.")] = "",
    config: ConfigOpt = None,
    metrics_port: MetricsOpt = None,
    interval: IntervalOpt = None,
    as_json: JsonOpt = False,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Start a rollout of a release on ROUTE and drive it to the end (this process is the controller).

    Refuses a release without a passing eval record (as `llmops promote` does), then points the route's
    canary at it and steps its weight. At each step canary and stable are compared on the same window
    (error rate, latency, JSON validity, feedback, output drift, as the spec enables) with anytime-valid
    tests: a failed check sets the canary weight to 0 at once and restores the canary pointer (exit 1);
    too little traffic by a step's max_duration pauses (exit 3); after the last step the release is
    promoted to production and the weights go back to 100/0 (exit 0). Kill it at any time and run
    `llmops rollout resume ROUTE`.

    Example: llmops rollout start support-triage --adapter support-triage/3 --prompt support-triage/2 --steps 10,50,100
    """
    check_name(route, "route")
    with stdout_to_stderr(as_json):
        outcome = _service().start(workspace(ws_path), route, adapter=adapter, prompt=prompt, steps=steps, force=force,
                                reason=reason, options=_options(config, metrics_port, interval, as_json))  # fmt: skip
    _finish(outcome, as_json)


@app.command()
def resume(
    route: RouteArg,
    config: ConfigOpt = None,
    metrics_port: MetricsOpt = None,
    interval: IntervalOpt = None,
    as_json: JsonOpt = False,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Continue ROUTE's running or paused rollout where it stopped (after a kill, a pause or a crash).

    A killed controller's step continues on the same window; a paused step starts a new window. Refused
    while another controller holds the route's rollout lease.

    Example: llmops rollout resume support-triage
    """
    check_name(route, "route")
    with stdout_to_stderr(as_json):
        outcome = _service().resume(
            workspace(ws_path), route, options=_options(config, metrics_port, interval, as_json)
        )
    _finish(outcome, as_json)


@app.command()
def abort(
    route: RouteArg,
    reason: Annotated[str, typer.Option(help="Why; kept in the audit log.")] = "",
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Abort ROUTE's rollout: canary weight 0 and canary pointer back, audited (a running controller is told).

    Example: llmops rollout abort support-triage --reason "answers look wrong"
    """
    check_name(route, "route")
    with stdout_to_stderr(as_json):
        outcome = _service().abort(workspace(ws_path), route, reason=reason,
                                options=_options(config, None, None, as_json))  # fmt: skip
    if as_json:
        print_json({"rollout": outcome.rollout_id, "status": outcome.status, "state": outcome.state.to_dict()})
        return
    console().print(f"rollout {outcome.rollout_id}: {outcome.status} ({outcome.state.reason})")


def _view_json(view: service.RolloutView) -> dict[str, Any]:
    rs = view.route_state
    return {
        "rollout": view.record.rollout_id if view.record else None,
        "status": view.record.status if view.record else None,
        "state": view.state.to_dict() if view.state else None,
        "weights": dict(rs.weights) if rs and rs.weights else None,
        "stages": dict(rs.stages) if rs else {},
        "owner": rs.rollout if rs else None,
    }


def _render(view: service.RolloutView) -> Table | str:
    if view.record is None or view.state is None:
        return "no rollout of this route yet"
    s: RolloutState = view.state
    weights = dict(view.route_state.weights) if view.route_state and view.route_state.weights else {}
    title = (
        f"rollout {view.record.rollout_id} of {s.route}: {view.record.status}, step {s.step + 1}/{len(s.steps)} "
        f"({s.current.weight}%), phase {s.phase}; weights {weights or 'from serving/gateway.yaml'}; {s.label}"
    )
    table = Table(title=title, title_justify="left")
    for col in ("check", "verdict", "canary n", "stable n", "canary", "stable", "statistic", "p (anytime)", "rule"):
        table.add_column(col)
    for r in s.results:
        table.add_row(
            r["check"], r["verdict"], str(r["n_canary"]), str(r["n_stable"]), _num(r.get("canary")),
            _num(r.get("stable")), _num(r.get("statistic")), _num(r.get("p_value")), r.get("threshold", ""),
        )  # fmt: skip
    if s.reason:
        table.caption = s.reason
    return table


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


@app.command()
def status(
    route: RouteArg,
    watch: Annotated[
        bool, typer.Option("--watch", help="Refresh every 2 s until the rollout ends (Ctrl-C stops).")
    ] = False,
    as_json: JsonOpt = False,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Show ROUTE's newest rollout: step, weights, and per check the samples, statistic, p-value and verdict.

    Example: llmops rollout status support-triage --watch
    """
    check_name(route, "route")
    ws = workspace(ws_path)
    svc = _service()
    view = svc.status(ws, route)
    if as_json:
        print_json(_view_json(view))
        return
    if not watch:
        console().print(_render(view))
        return
    from rich.live import Live

    with Live(_render(view), console=console(), refresh_per_second=1) as live:
        while view.record is not None and view.record.is_open:
            time.sleep(2.0)
            view = svc.status(ws, route)
            live.update(_render(view))
