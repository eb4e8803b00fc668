"""Shared CLI plumbing: the console, the workspace option, and error display."""

from __future__ import annotations

import contextlib
import json
import math
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
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


JsonOpt = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print one JSON document instead of the table: full values, UTC ISO-8601 times, nothing else on stdout.",
    ),
]

#: width given to output that is not a terminal (a pipe, a file, a CI log): wider than any row, so
#: nothing is cut to ``suppor…`` or wrapped; a table still takes only the width its cells need
PIPED_WIDTH = 10_000


def _untruncated(out: Console) -> Console:
    """Rich assumes 80 columns when its output is not a terminal and cuts table cells to fit; a pipe
    or a file has no width to fit, so it gets one that no row reaches."""
    if not out.is_terminal:
        out.width = PIPED_WIDTH
    return out


def console() -> Console:
    return _untruncated(Console(highlight=False))


def err_console() -> Console:
    return _untruncated(Console(stderr=True, highlight=False))


def iso_utc(ms: int | None) -> str | None:
    """Milliseconds since the epoch as ISO-8601 UTC, e.g. ``2025-01-31T09:30:00.123Z``; None when unknown (0)."""
    if not ms:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_safe(value: object) -> object:
    """``value`` with NaN and infinities as None: JSON has no such numbers (``json.dumps`` would write ``NaN``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def print_json(data: object) -> None:
    """Write ``data`` to stdout as one JSON document (sorted keys; no markup, colour or wrapping)."""
    typer.echo(json.dumps(_json_safe(data), indent=2, sort_keys=True, default=str))


@contextlib.contextmanager
def stdout_to_stderr(active: bool = True) -> Iterator[None]:
    """While ``active``: what Python code prints goes to stderr, so a --json stdout holds the JSON alone."""
    if not active:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


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
