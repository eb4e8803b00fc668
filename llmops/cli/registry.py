"""``llmops registry …``: run the embedded MLflow server and UI."""

from __future__ import annotations

from typing import Annotated

import typer

from llmops.cli.common import WorkspaceOpt, console, run_until_stopped, stop_requested, workspace
from llmops.registry.server import start_server

app = typer.Typer(help="The MLflow registry: serve the embedded store with its UI.", no_args_is_help=True)


@app.command()
def serve(
    port: Annotated[int | None, typer.Option(help="Port (default from llmops.yaml, 5000).")] = None,
    host: Annotated[str | None, typer.Option(help="Address (default 127.0.0.1).")] = None,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Start the MLflow server + UI over the workspace's SQLite store; Ctrl-C stops it.

    Point other tools at it with MLFLOW_TRACKING_URI=http://127.0.0.1:5000.

    Example: llmops registry serve --port 5000
    """
    ws = workspace(ws_path)
    out = console()
    stop = stop_requested()
    with out.status("starting MLflow (a fresh store migrates for ~30 s)…"):
        proc, url = start_server(ws, host=host, port=port)
    try:
        out.print(f"[green]MLflow UI[/green] {url}   (log: {proc.log_path}, pid {proc.pid})")
        out.print("Ctrl-C to stop")
        run_until_stopped(stop, proc.alive, f"MLflow server exited; see {proc.log_path}")
    finally:
        proc.stop()
    out.print("stopped")
