"""``llmops eval …``: run eval suites (in CI) and show eval records."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from llmops.cli.common import JsonOpt, WorkspaceOpt, console, iso_utc, print_json, workspace
from llmops.cli.render import RichReporter
from llmops.extras import require
from llmops.refs import AdapterRef, PromptRef
from llmops.registry import connect

#: the ``--candidate`` value that evaluates the base model alone
BASE_MODEL_ONLY = "none"

app = typer.Typer(
    help="Eval suites: score a release on quality, latency and bias; gate promotion.", no_args_is_help=True
)


@app.command()
def run(
    suite: Annotated[
        Path, typer.Argument(help="Suite file, e.g. evals/support-triage.yaml.", exists=True, dir_okay=False)
    ],
    candidate: Annotated[
        str | None, typer.Option(help="Adapter to evaluate (NAME/VERSION, NAME@alias, or 'none').")
    ] = None,
    prompt: Annotated[str | None, typer.Option(help="Prompt version to evaluate (NAME/VERSION or NAME@alias).")] = None,
    prompt_file: Annotated[
        Path | None,
        typer.Option(
            help="Prompt file to evaluate as a draft (not registered; no eval record, reports only).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="Only the first N cases (the record then never counts for promotion).")
    ] = None,
    endpoint: Annotated[
        str | None, typer.Option(help="OpenAI-compatible engine URL to use instead of starting one.")
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Ignore cached outputs; call the model for every case.")
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Folder for report.json, report.html, junit.xml.")
    ] = None,
    gateway_target: Annotated[
        str | None,
        typer.Option(
            help="--endpoint is an llmops gateway: send to the suite's route, pinned to this target (admin key)."
        ),
    ] = None,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Run a suite against a candidate release; compare with production; record the verdict in MLflow.

    Exit code: 0 every gate passed, 1 a gate failed, 2 an error (nothing scored).

    Example: llmops eval run evals/support-triage.yaml --candidate support-triage/1 -o reports/
    Example: llmops eval run evals/support-triage.yaml --prompt-file prompts/support-triage.yaml -o reports/
    """
    require("eval run", "evals")
    if prompt and prompt_file:
        raise typer.BadParameter("give --prompt or --prompt-file, not both", param_hint="--prompt-file")
    # the eval runner's stack (aiohttp, ragas, matplotlib) loads only when a suite runs
    from llmops.evals.service import RunOptions, run_eval

    ws = workspace(ws_path)
    out = console()
    base_only = candidate is not None and candidate.strip().lower() == BASE_MODEL_ONLY
    opts = RunOptions(
        candidate=AdapterRef.parse(candidate) if candidate and not base_only else None,
        prompt=PromptRef.parse(prompt) if prompt else None,
        prompt_file=prompt_file,
        base_model_only=base_only,
        limit=limit,
        endpoint=endpoint,
        use_cache=not no_cache,
        output_dir=output,
        gateway_target=gateway_target,
        api_key=os.environ.get("LLMOPS_GATEWAY_ADMIN_KEY"),
    )
    result = run_eval(ws, suite, opts, reporter=RichReporter(out))
    o = result.outcome
    out.print(
        f"candidate: {o.candidate.release.label()}  (cached outputs: {o.candidate.cached}, errors: {o.candidate.errors})"
    )
    if o.production is not None:
        out.print(f"production: {o.production.release.label()}  ({o.production_source})")
    for gate in o.gates:
        colour = "green" if gate.passed else "red"
        out.print(f"[{colour}]{gate.line()}[/{colour}]")
    if result.draft is not None:
        draft = result.draft
        out.print(f"draft prompt {draft.path} (content sha256 {draft.content_sha256}): not registered, no eval record")
        out.print(f"reports: {result.report_dir}")
    else:
        out.print(f"reports: {result.report_dir}   record: {result.record_id}")
    if not o.passed:
        out.print("[red]verdict: FAIL[/red]")
        raise typer.Exit(1)
    out.print("[green]verdict: PASS[/green]")


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="Eval record id (the MLflow run id printed by `eval run`).")],
    as_json: JsonOpt = False,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Print an eval record: suite, release, verdict and metrics.

    Example: llmops eval show 3f2a9c0d8e1b4c6a9f0e2d4b6a8c0e1f
    Example: llmops eval show 3f2a9c0d8e1b4c6a9f0e2d4b6a8c0e1f --json
    """
    rec = connect(workspace(ws_path)).evals.get(run_id)
    if as_json:
        print_json(
            {
                "record_id": rec.run_id,
                "suite": rec.suite,
                "suite_sha256": rec.suite_hash,
                "verdict": rec.verdict,
                "release": rec.release.canonical(),  # base_model, adapter, prompt (exact versions), params
                "release_key": rec.release.key if rec.release.is_exact else None,
                "metrics": rec.metrics,  # a NaN metric becomes null
                "started": iso_utc(rec.start_ms),
                "artifact_uri": rec.artifact_uri,
            }
        )
        return
    out = console()
    out.print(f"[bold]{rec.suite}[/bold]  verdict: {rec.verdict.upper()}  record {rec.run_id}")
    out.print(f"release: {rec.release.label()}   suite sha256 {rec.suite_hash[:16]}…")
    table = Table("metric", "value")
    for key, value in sorted(rec.metrics.items()):
        table.add_row(key, "nan" if math.isnan(value) else f"{value:.4g}")
    out.print(table)
    out.print(f"artifacts: {rec.artifact_uri}")
