"""``llmops retrain ROUTE``: a candidate adapter from captured production traffic and feedback, never promoted."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from llmops.cli.common import JsonOpt, WorkspaceOpt, console, err_console, print_json, stdout_to_stderr, workspace
from llmops.cli.render import RichReporter
from llmops.config.monitor import MonitorFile, RouteMonitorSpec, load_monitor_file
from llmops.errors import ConfigError
from llmops.extras import require
from llmops.names import check_name

MONITOR_FILE = "serving/monitor.yaml"


def parse_since(value: str) -> float:
    """Epoch seconds from ``1767225600`` or an ISO-8601 time (``2026-11-30T10:00:00Z``; naive means UTC)."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError.at("--since", f"{value!r} is neither epoch seconds nor an ISO-8601 time") from exc
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def retrain(
    route: Annotated[str, typer.Argument(help="Route name in serving/gateway.yaml, e.g. support-triage.")],
    job: Annotated[
        Path | None, typer.Option(help="Fine-tune job file (default: the job under finetune/ of the serving adapter).")
    ] = None,
    cluster: Annotated[str | None, typer.Option(help="Ray cluster address: train there instead of here.")] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Use requests from this time (ISO-8601 or epoch seconds; default: since the release was set)."
        ),
    ] = None,
    trigger: Annotated[
        str | None, typer.Option(help="Monitor trigger run id to link the dataset, job and evals to.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help=f"Monitor spec with the log paths (default: {MONITOR_FILE}).")
    ] = None,
    min_records: Annotated[int, typer.Option(min=1, help="Usable production rows needed (else exit 3).")] = 50,
    max_steps: Annotated[
        int | None, typer.Option(min=1, help="Optimizer steps of the retrain (default: the job's).")
    ] = None,
    endpoint: Annotated[
        str | None,
        typer.Option(
            help="Engine URL the candidate is evaluated on (default: the route's engine; key: LLMOPS_ENGINE_KEY)."
        ),
    ] = None,
    request_log: Annotated[
        str | None, typer.Option(help="Request log path or glob (default: the monitor spec's), under the llmops home.")
    ] = None,
    feedback_log: Annotated[
        str | None, typer.Option(help="Feedback log path or glob (default: the monitor spec's), under the llmops home.")
    ] = None,
    as_json: JsonOpt = False,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Build a dataset from ROUTE's captured traffic and feedback, fine-tune a candidate from the serving
    adapter, and evaluate it on the route's required suites. The candidate is registered, never promoted.

    Rows: requests whose feedback carries a correction (the correction is the answer) or a score >= 0.5
    (the served answer is confirmed), merged with the job's training data; rows whose input is in the
    eval/test split or a suite's cases are dropped, never trained on.

    Exit code: 0 the candidate passed its evals, 1 it failed them, 2 an error, 3 too few usable rows.

    Example: llmops retrain support-triage --since 2026-11-30T00:00:00Z --min-records 20
    """
    require("retrain", "train")
    require("retrain", "evals")
    from llmops.monitor.retrain import retrain as do_retrain

    check_name(route, "route")
    ws = workspace(ws_path)
    path = config or ws.root / MONITOR_FILE
    if config is not None and not path.is_file():
        raise ConfigError.at(str(config), "monitor spec not found")
    spec = load_monitor_file(path, display=str(config or MONITOR_FILE)) if path.is_file() else None
    logs = {k: v for k, v in (("request_log", request_log), ("feedback_log", feedback_log)) if v}
    if logs:
        spec = (spec or MonitorFile(routes={route: RouteMonitorSpec()})).model_copy(update=logs)
    out = err_console() if as_json else console()
    with stdout_to_stderr(as_json):
        result = do_retrain(
            ws,
            route,
            spec=spec,
            job=job,
            cluster=cluster,
            since=parse_since(since) if since else None,
            trigger=trigger,
            min_records=min_records,
            max_steps=max_steps,
            endpoint=endpoint,
            reporter=RichReporter(out),
        )
    code = 0 if result.passed else (2 if result.errored else 1)
    if as_json:
        print_json(result.as_dict())
        raise typer.Exit(code)
    c = result.counts
    dropped = ", ".join(f"{k} {v}" for k, v in c["dropped"].items() if v) or "none"
    out.print(
        f"dataset {result.fingerprint[:12]}: {c['original_rows']} original + {c['production_rows']} production rows "
        f"({c['corrections']} corrections, {c['confirmed']} confirmed); dropped: {dropped}"
    )
    out.print(
        f"candidate adapter [bold]{result.candidate}[/bold] (continues {result.init_adapter}; run {result.finetune_run_id})"
    )
    for e in result.evals:
        colour = "green" if e.verdict == "pass" else "red"
        out.print(f"  [{colour}]{e.suite}: {e.verdict}[/{colour}] {e.record_id} {e.detail}".rstrip(), soft_wrap=True)
    if not result.evals:
        out.print("  [yellow]not evaluated: no required suite targets the route[/yellow]")
    prompt = f" --prompt {result.prompt}" if result.prompt else ""
    out.print(
        f"not promoted: run `llmops promote {route} --adapter {result.candidate}{prompt} --to canary` after review",
        markup=False,
    )
    raise typer.Exit(code)
