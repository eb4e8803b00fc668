"""Shared CLI plumbing: the console, the workspace option, and error display."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from llmops.config.workspace import Workspace, load_workspace

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        help="Workspace folder (default: nearest folder upward holding llmops.yaml, else the current one).",
        envvar="LLMOPS_WORKSPACE",
        show_default=False,
    ),
]


def console() -> Console:
    return Console(highlight=False)


def err_console() -> Console:
    return Console(stderr=True, highlight=False)


def workspace(path: Path | None) -> Workspace:
    return load_workspace(path)


def stop_requested() -> threading.Event:
    """An event that Ctrl-C (SIGINT) or SIGTERM sets, for commands that keep a server running.

    Handled explicitly: a shell that starts a command in the background (``cmd &`` in a script) leaves
    SIGINT ignored, and Python then never raises KeyboardInterrupt.
    """
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def run_until_stopped(stop: threading.Event, alive: Callable[[], bool], message: str) -> None:
    """Return once ``stop`` is set; exit 1 with ``message`` if the server dies first."""
    while not stop.wait(1.0):
        if not alive():
            console().print(f"[red]{message}[/red]")
            raise typer.Exit(1)
