"""Shared CLI plumbing: the console, the workspace option, and error display."""

from __future__ import annotations

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
