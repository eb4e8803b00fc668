"""``llmops adapters …``: registered LoRA adapter versions and where each came from."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from llmops.cli.common import JsonOpt, WorkspaceOpt, console, iso_utc, print_json, workspace
from llmops.names import check_name
from llmops.registry import Registry, connect, tags
from llmops.registry.adapters import AdapterVersionInfo

app = typer.Typer(help="LoRA adapters in the registry: versions, aliases, lineage.", no_args_is_help=True)


def _registry(ws_path: WorkspaceOpt) -> Registry:
    return connect(workspace(ws_path))


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M") if ms else "-"


def _short(value: str, n: int = 12) -> str:
    return value[:n] if value else "-"


def _version_json(info: AdapterVersionInfo) -> dict[str, object]:
    """One adapter version for --json: full values, every lineage key (None when empty)."""
    return {
        "adapter": info.ref,
        "name": info.name,
        "version": info.version,
        "engine_name": info.lora_name,
        "aliases": list(info.aliases),
        "created": iso_utc(info.created_ms),
        "sha256": info.sha256 or None,
        "source": info.source or None,
        "run_id": info.run_id or None,
        "lineage": {key.removeprefix("llmops."): info.tags.get(key) or None for key in tags.LINEAGE},
    }


@app.command("list")
def list_versions(
    name: Annotated[str | None, typer.Argument(help="Only this adapter's versions.")] = None,
    as_json: JsonOpt = False,
    ws_path: WorkspaceOpt = None,
) -> None:
    """List adapter versions with aliases and lineage (base model, data, prompt, commit, run).

    Example: llmops adapters list
    Example: llmops adapters list --json
    """
    registry = _registry(ws_path).adapters
    names = [check_name(name, "adapter")] if name else registry.names()
    table = Table("adapter", "aliases", "created (UTC)", "base model", "dataset", "prompt", "commit", "run")
    rows = 0
    items: list[dict[str, object]] = []
    for adapter in names:
        for v in registry.versions(adapter):
            items.append(_version_json(v))
            t = v.tags
            table.add_row(
                v.ref,
                ",".join(v.aliases) or "-",
                _when(v.created_ms),
                f"{t.get(tags.BASE_MODEL) or '-'} ({_short(t.get(tags.BASE_MODEL_SHA256, ''), 8)})",
                _short(t.get(tags.DATASET_FINGERPRINT, "")),
                t.get(tags.PROMPT_VERSION) or "-",
                _short(t.get(tags.GIT_COMMIT, ""), 8),
                _short(v.run_id or "", 8),
            )
            rows += 1
    if as_json:
        print_json(items)
        return
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
    lines += [(key.removeprefix("llmops."), info.tags.get(key) or "-") for key in tags.LINEAGE]
    return lines


@app.command()
def show(
    ref: Annotated[str, typer.Argument(help="NAME (latest), NAME@alias or NAME/VERSION.")],
    as_json: JsonOpt = False,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Show one adapter version: files' sha256, aliases, full lineage and the training run's final metrics.

    Example: llmops adapters show support-triage/1
    Example: llmops adapters show support-triage@production --json
    """
    registry = _registry(ws_path)
    info = registry.adapters.get(ref)
    table = Table("field", "value", show_header=False)
    for key, value in _show_lines(info):
        table.add_row(key, value)
    run = registry.runs.find(info.run_id) if info.run_id else None
    if as_json:
        run_json = None if run is None else {"status": run.status, "metrics": run.metrics}
        print_json({**_version_json(info), "run": run_json})
        return
    if run is not None:
        for key in ("final_eval_loss", "loss", "tokens_per_s", "train_seconds"):
            if key in run.metrics:
                table.add_row(f"run {key}", f"{run.metrics[key]:.6g}")
        table.add_row("run status", run.status)
    console().print(table)
