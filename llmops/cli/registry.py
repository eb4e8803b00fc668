"""``llmops registry …``: run the embedded MLflow server and UI."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from llmops.cli.common import WorkspaceOpt, console, workspace
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
    # Ctrl-C (SIGINT) and SIGTERM both ask for a clean stop. Handled explicitly: a shell that starts us in
    # the background makes SIGINT ignored, and Python then never raises KeyboardInterrupt.
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with out.status("starting MLflow (a fresh store migrates for ~30 s)…"):
        proc, url = start_server(ws, host=host, port=port)
    try:
        out.print(f"[green]MLflow UI[/green] {url}   (log: {proc.log_path}, pid {proc.pid})")
        out.print("Ctrl-C to stop")
        while not stop.wait(1.0):
            if not proc.alive():
                out.print(f"[red]MLflow server exited[/red]; see {proc.log_path}")
                raise typer.Exit(1)
    finally:
        proc.stop()
    out.print("stopped")
