"""``llmops report ROUTE``: the model card and EU AI Act Annex IV technical documentation of a route's release."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from llmops.cli.common import JsonOpt, WorkspaceOpt, console, print_json, workspace
from llmops.governance.render import FORMATS
from llmops.governance.report import write_report
from llmops.names import check_name
from llmops.refs import check_alias
from llmops.registry import connect


def report(
    route: Annotated[str, typer.Argument(help="Route whose release is documented (serving/gateway.yaml).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder the files are written to.")],
    stage: Annotated[str, typer.Option(help="Stage whose release is documented.")] = "production",
    formats: Annotated[
        str,
        typer.Option("--format", help=f"Formats of the technical documentation, comma-separated: {','.join(FORMATS)}."),
    ] = ",".join(FORMATS),
    as_json: JsonOpt = False,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Write the model card (README.md, Hugging Face format) and the Annex IV technical documentation.

    Every statement comes from a registry record or a workspace file (each section names its sources);
    what neither records says "not recorded". Exit 1 when the route has no release at the stage.

    Example: llmops report support-triage -o compliance/
    Example: llmops report support-triage --stage canary -o /tmp/canary-docs --format md,json
    """
    check_name(route, "route")
    check_alias(stage)
    ws = workspace(ws_path)
    result = write_report(connect(ws), ws, route, stage, output, [f.strip() for f in formats.split(",") if f.strip()])
    if as_json:
        print_json({
            "route": result.route, "stage": result.stage, "pointer_version": result.pointer_version,
            "release_key": result.release_key, "files": [str(p) for p in result.files], "metrics": result.metrics,
            "gaps": list(result.gaps),
        })  # fmt: skip
        return
    out = console()
    out.print(f"{route}@{stage}: release v{result.pointer_version} (key {result.release_key[:12]}), "
              f"{result.metrics} metric value(s) from its eval records")  # fmt: skip
    for path in result.files:
        out.print(f"[green]wrote[/green] {path}")
    for gap in result.gaps:
        out.print(f"[yellow]not recorded:[/yellow] {escape(gap)}")
