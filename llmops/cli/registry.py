"""``llmops registry …``: run the MLflow server and UI over the workspace's store or a shared database."""

from __future__ import annotations

from typing import Annotated

import typer

from llmops.cli.common import WorkspaceOpt, console, run_until_stopped, stop_requested, workspace
from llmops.extras import require
from llmops.redact import redact
from llmops.registry.server import start_server

app = typer.Typer(help="The MLflow registry: serve the embedded store with its UI.", no_args_is_help=True)


@app.command()
def serve(
    port: Annotated[int | None, typer.Option(help="Port (default from llmops.yaml, 5000).")] = None,
    host: Annotated[str | None, typer.Option(help="Address (default 127.0.0.1).")] = None,
    backend_store_uri: Annotated[
        str | None,
        typer.Option(
            "--backend-store-uri",
            help="Database of the registry, e.g. postgresql://USER:PASS@HOST:5432/DB "
            "(default: the workspace's SQLite file).",
        ),
    ] = None,
    artifacts_destination: Annotated[
        str | None,
        typer.Option(
            "--artifacts-destination",
            help="Where served artifacts are stored: a folder or s3://bucket/prefix (default .llmops/artifacts).",
        ),
    ] = None,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Start the MLflow server + UI (artifacts served through it); Ctrl-C stops it.

    Point other tools at it with MLFLOW_TRACKING_URI=http://127.0.0.1:5000.

    Example: llmops registry serve --port 5000
    Example: llmops registry serve --backend-store-uri postgresql://mlflow:PASS@db:5432/mlflow
    """
    require("registry serve", "registry")
    ws = workspace(ws_path)
    out = console()
    stop = stop_requested()
    store = redact(backend_store_uri or ws.tracking_uri)
    with out.status(f"starting MLflow on {store} (a fresh store migrates first)…"):
        proc, url = start_server(
            ws, host=host, port=port, backend_store_uri=backend_store_uri, artifacts_destination=artifacts_destination
        )
    try:
        out.print(f"[green]MLflow UI[/green] {url}   (store: {store}; log: {proc.log_path}, pid {proc.pid})")
        out.print("Ctrl-C to stop")
        run_until_stopped(stop, proc.alive, f"MLflow server exited; see {proc.log_path}")
    finally:
        proc.stop()
    out.print("stopped")
