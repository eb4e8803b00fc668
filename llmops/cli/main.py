"""The ``llmops`` command: entry point and workspace-wide commands."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from typer._click.core import Context as ClickContext  # typer vendors click; its groups take this type
from typer.core import TyperGroup

from llmops import __version__
from llmops.cli import adapters as adapters_cli
from llmops.cli import audit as audit_cli
from llmops.cli import data as data_cli
from llmops.cli import evals as evals_cli
from llmops.cli import finetune as finetune_cli
from llmops.cli import logs as logs_cli
from llmops.cli import models as models_cli
from llmops.cli import monitor as monitor_cli
from llmops.cli import prompts as prompts_cli
from llmops.cli import registry as registry_cli
from llmops.cli import release as release_cli
from llmops.cli import report as report_cli
from llmops.cli import retrain as retrain_cli
from llmops.cli import rollout as rollout_cli
from llmops.cli import route as route_cli
from llmops.cli import serve as serve_cli
from llmops.cli import trace as trace_cli
from llmops.cli.common import (
    JsonOpt,
    WorkspaceOpt,
    console,
    err_console,
    print_json,
    stdout_to_stderr,
    stop_requested,
    workspace,
)
from llmops.cli.demoview import hold_until_stopped, print_result, print_step
from llmops.cli.render import RichReporter
from llmops.config.workspace import find_root
from llmops.doctor import Check, repair_pending, run_checks
from llmops.errors import LlmopsError, ValidationFailed
from llmops.extras import require
from llmops.registry.backend import MLFLOW_PROCESS_DEFAULTS
from llmops.scaffold import scaffold
from llmops.validate import validate_workspace, workspace_warnings


def _report(exc: LlmopsError) -> None:
    err = err_console()
    problems = getattr(exc, "problems", None)
    if isinstance(exc, ValidationFailed) and problems:
        err.print(f"[red]error:[/red] {len(problems)} problem(s)")
        for p in problems:
            err.print(f"  {p}", markup=False)
    else:
        err.print("[red]error:[/red] ", end="")
        err.print(str(exc), markup=False)


class LlmopsGroup(TyperGroup):
    """Root command group: an llmops error becomes one clear message and a non-zero exit."""

    def invoke(self, ctx: ClickContext) -> object:
        try:
            return super().invoke(ctx)
        except LlmopsError as exc:
            _report(exc)
            raise typer.Exit(exc.exit_code) from exc


app = typer.Typer(
    name="llmops",
    cls=LlmopsGroup,
    help=(
        "llmops manages prompts and LoRA adapters from git to production traffic.\n\n"
        "Everyday jobs: edit prompts/*.yaml and `llmops prompts push`; fine-tune with "
        "`llmops finetune run`; serve with `llmops serve`; gate releases with `llmops eval run`.\n\n"
        "Start here: `llmops init my-app && cd my-app && llmops validate && llmops doctor`."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
app.add_typer(prompts_cli.app, name="prompts")
app.add_typer(registry_cli.app, name="registry")
app.add_typer(models_cli.app, name="models")
app.add_typer(serve_cli.app, name="serve")
app.add_typer(evals_cli.app, name="eval")
app.add_typer(finetune_cli.app, name="finetune")
app.add_typer(data_cli.app, name="data")
app.add_typer(adapters_cli.app, name="adapters")
app.add_typer(monitor_cli.app, name="monitor")
app.add_typer(rollout_cli.app, name="rollout")
app.add_typer(route_cli.app, name="route")
app.add_typer(logs_cli.app, name="logs")
app.command()(audit_cli.audit)
app.command()(trace_cli.trace)
app.command()(release_cli.promote)
app.command()(release_cli.rollback)
app.command()(retrain_cli.retrain)
app.command()(report_cli.report)


def _version(value: bool) -> None:
    if value:
        console().print(f"llmops {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """llmops: prompts and LoRA adapters, from git to production traffic."""


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create or fill.")] = Path("."),
    force: Annotated[bool, typer.Option(help="Overwrite files that already exist.")] = False,
) -> None:
    """Scaffold a workspace: llmops.yaml and the four asset folders with an example each.

    Example: llmops init my-app
    """
    written, skipped = scaffold(directory, force=force)
    out = console()
    for path in written:
        out.print(f"[green]created[/green] {path}")
    for path in skipped:
        out.print(f"[yellow]kept[/yellow] {path} (exists; --force overwrites)")
    out.print(f"next: cd {directory} && llmops validate && llmops prompts push")


@app.command()
def validate(ws_path: WorkspaceOpt = None) -> None:
    """Check every YAML file of the workspace; report all problems at once with file, line and field.

    Example: llmops validate
    """
    root = ws_path.resolve() if ws_path else find_root()
    checked, problems = validate_workspace(root)
    if problems:
        raise ValidationFailed(problems)
    err = err_console()
    for warning in workspace_warnings(root):
        err.print("[yellow]warning:[/yellow] ", end="")
        err.print(str(warning), markup=False)
    console().print(f"[green]ok[/green] {checked} file(s) valid in {root}")


@app.command()
def doctor(
    as_json: JsonOpt = False,
    repair: Annotated[
        bool, typer.Option("--repair", help="First settle alias moves that died midway (pending audit records).")
    ] = False,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Print versions and check the setup: packages import, registry reachable, vLLM, GPU, interrupted moves.

    Exit code 1 when a check fails (--json too). --repair settles interrupted promotions first.

    Example: llmops doctor
    Example: llmops doctor --json
    Example: llmops doctor --repair
    """
    ws = workspace(ws_path)
    repaired = repair_pending(ws) if repair else []
    with stdout_to_stderr(active=as_json):  # a package that prints while imported must not spoil the JSON
        checks = [*(Check(f"repaired {r.object}@{r.alias}", "ok", f"{r.outcome}: {r.reason}") for r in repaired),
                  *run_checks(ws)]  # fmt: skip
    failed = sum(check.status == "fail" for check in checks)
    if as_json:
        print_json([{"name": c.name, "status": c.status, "detail": c.detail} for c in checks])
    else:
        table = Table("check", "status", "detail")
        for check in checks:
            colour = {"ok": "green", "warn": "yellow", "fail": "red"}[check.status]
            table.add_row(check.name, f"[{colour}]{check.status}[/{colour}]", check.detail)
        console().print(table)
    if failed:
        raise typer.Exit(1)


@app.command()
def demo(
    serve: Annotated[bool, typer.Option(help="Keep the engine and gateway running at the end (Ctrl-C stops).")] = False,
    train_steps: Annotated[
        int | None, typer.Option(help="Fewer training steps (quick runs); default: the job files'.")
    ] = None,
    traffic: Annotated[int, typer.Option(help="Requests sent through the gateway.")] = 200,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Run the whole lifecycle on the embedded defaults: model, prompts, fine-tunes, evals, canary, production.

    Each step is idempotent; a rerun reuses what is done. Logs: .llmops/logs/.

    Example: llmops demo
    """
    require("demo", "all", "torch", "vllm", "ragas", "numpy", "flask")
    # the demo pulls every stack (torch, aiohttp, ragas, openai): loaded only when it runs
    from llmops.demo import DemoOptions, run_demo

    out = console()
    result = run_demo(
        workspace(ws_path),
        DemoOptions(train_steps=train_steps, traffic=traffic),
        reporter=RichReporter(out),
        on_step=lambda step: print_step(out, step),
        hold=hold_until_stopped(out, stop_requested()) if serve else None,
    )
    if not serve:
        print_result(out, result)


def main() -> None:
    """Console-script entry point.

    OpenMP's default busy-waiting makes torch threads crawl (10x) on a small machine whose cores are
    shared with other processes (vLLM, MLflow); passive waiting must be set before torch is imported.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    for key, value in MLFLOW_PROCESS_DEFAULTS.items():  # fail fast on an unreachable registry, no telemetry
        os.environ.setdefault(key, value)
    app()
