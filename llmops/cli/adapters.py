"""``llmops adapters …``: registered LoRA adapter versions and where each came from."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from llmops.adapters.registry import LINEAGE_TAGS, AdapterRegistry, AdapterVersionInfo
from llmops.cli.common import WorkspaceOpt, console, workspace
from llmops.names import check_name

if TYPE_CHECKING:
    from mlflow import MlflowClient

app = typer.Typer(help="LoRA adapters in the registry: versions, aliases, lineage.", no_args_is_help=True)


def _registry(ws_path: WorkspaceOpt) -> tuple[AdapterRegistry, MlflowClient]:
    from llmops.registry.tracking import connect

    ws = workspace(ws_path)
    client = connect(ws)
    return AdapterRegistry(client, ws), client


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M") if ms else "-"


def _short(value: str, n: int = 12) -> str:
    return value[:n] if value else "-"


@app.command("list")
def list_versions(
    name: Annotated[str | None, typer.Argument(help="Only this adapter's versions.")] = None,
    ws_path: WorkspaceOpt = None,
) -> None:
    """List adapter versions with aliases and lineage (base model, data, prompt, commit, run).

    Example: llmops adapters list
    """
    registry, _ = _registry(ws_path)
    names = [check_name(name, "adapter")] if name else registry.names()
    table = Table("adapter", "aliases", "created (UTC)", "base model", "dataset", "prompt", "commit", "run")
    rows = 0
    for adapter in names:
        for v in registry.versions(adapter):
            t = v.tags
            table.add_row(
                v.ref,
                ",".join(v.aliases) or "-",
                _when(v.created_ms),
                f"{t.get('llmops.base_model') or '-'} ({_short(t.get('llmops.base_model_sha256', ''), 8)})",
                _short(t.get("llmops.dataset_fingerprint", "")),
                t.get("llmops.prompt_version") or "-",
                _short(t.get("llmops.git_commit", ""), 8),
                _short(v.run_id or "", 8),
            )
            rows += 1
    console().print(table if rows else "no adapters registered")


def _show_lines(info: AdapterVersionInfo) -> list[tuple[str, str]]:
    lines = [
        ("adapter", info.ref),
        ("engine name", info.lora_name),
        ("aliases", ", ".join(info.aliases) or "-"),
        ("created (UTC)", _when(info.created_ms)),
        ("sha256 (manifest)", info.sha256 or "-"),
        ("source", info.source),
    ]
    lines += [(key.removeprefix("llmops."), info.tags.get(key) or "-") for key in LINEAGE_TAGS]
    return lines


@app.command()
def show(
    ref: Annotated[str, typer.Argument(help="NAME (latest), NAME@alias or NAME/VERSION.")],
    ws_path: WorkspaceOpt = None,
) -> None:
    """Show one adapter version: files' sha256, aliases, full lineage and the training run's final metrics.

    Example: llmops adapters show support-triage/1
    """
    registry, client = _registry(ws_path)
    info = registry.get(ref)
    table = Table("field", "value", show_header=False)
    for key, value in _show_lines(info):
        table.add_row(key, value)
    if info.run_id:
        run = client.get_run(info.run_id)
        for key in ("final_eval_loss", "loss", "tokens_per_s", "train_seconds"):
            if key in run.data.metrics:
                table.add_row(f"run {key}", f"{run.data.metrics[key]:.6g}")
        table.add_row("run status", run.info.status)
    console().print(table)
