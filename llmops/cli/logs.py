"""``llmops logs prune``: apply ``llmops.yaml``'s ``retention:`` to request logs, feedback and audit records."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from llmops.cli.common import JsonOpt, WorkspaceOpt, console, err_console, print_json, stdout_to_stderr, workspace
from llmops.cli.render import RichReporter
from llmops.config.gateway import RequestLogSpec, load_gateway_file
from llmops.config.workspace import Workspace
from llmops.errors import ConfigError
from llmops.gitinfo import actor
from llmops.governance.retention import PruneResult, Targets, default_log_files, files_of, prune
from llmops.registry import connect

app = typer.Typer(help="Request logs and feedback logs: retention.", no_args_is_help=True)

DEFAULT_CONFIG = "serving/gateway.yaml"


def _live_paths(ws: Workspace, config: Path | None) -> tuple[Path | None, Path | None]:
    """(request log, feedback log) the gateway config names, resolved against the llmops home, as the gateway
    resolves them (:func:`llmops.gateway.settings.settings_from_file`); the defaults when the default config
    file does not exist."""
    path = config if config is not None else Path(DEFAULT_CONFIG)
    path = path if path.is_absolute() else ws.root / path
    if path.is_file():
        spec = load_gateway_file(path, display=ws.shown(path)).request_log
    elif config is not None:
        raise ConfigError.at("--config", f"{config} does not exist")
    else:
        spec = RequestLogSpec()
    return spec.paths(ws.home) or (None, None)


def _when(epoch_s: float | None) -> str:
    if epoch_s is None:
        return "-"
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _as_json(result: PruneResult, ws: Workspace) -> dict[str, object]:
    files = [
        {"path": ws.shown(f.path), "action": f.action, "removed": f.removed, "kept": f.kept, "undated": f.undated,
         "expired": f.expired, "note": f.note or None}
        for f in result.files
    ]  # fmt: skip
    return {"object": result.object, "reason": result.reason, "dry_run": result.dry_run,
            "record_id": result.record_id, **result.detail(ws.home), "file_results": files}  # fmt: skip


def _render(results: list[PruneResult], ws: Workspace, dry_run: bool) -> None:
    out = console()
    files = [(r.object, f) for r in results for f in r.files]
    if files:
        verb = "would be" if dry_run else ""
        table = Table("object", "file", f"action{' (dry run)' if dry_run else ''}", "removed", "kept", "undated",
                      "note")  # fmt: skip
        for name, f in files:
            removed = f.removed if f.action != "skipped" else f"0 ({f.expired} expired)"
            action = f"{verb} {f.action}" if verb and f.action in ("deleted", "rewritten") else f.action
            table.add_row(name, ws.shown(f.path), action, str(removed), str(f.kept),
                          str(f.undated), f.note or "-")  # fmt: skip
        out.print(table)
    for r in results:
        span = f" ({_when(r.oldest)} .. {_when(r.newest)})" if r.removed else ""
        did = "would remove" if dry_run else "removed"
        where = f"; audit record {r.record_id}" if r.record_id else ""
        line = f"{r.object}: {did} {r.removed} record(s) {r.reason} (before {_when(r.cutoff)} UTC){span}{where}"
        out.print(line, markup=False)
    if dry_run:
        out.print("dry run: nothing was changed or recorded")


@app.command("prune")
def prune_command(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would go; change and record nothing.")] = False,
    config: Annotated[
        Path | None,
        typer.Option("--config", help=f"Gateway config whose request_log paths are pruned (default {DEFAULT_CONFIG})."),
    ] = None,
    request_logs: Annotated[
        list[str] | None,
        typer.Option("--request-log", help="Request log file or glob, relative to the llmops home (repeatable)."),
    ] = None,
    feedback_logs: Annotated[
        list[str] | None,
        typer.Option("--feedback-log", help="Feedback log file or glob, relative to the llmops home (repeatable)."),
    ] = None,
    include_live: Annotated[
        bool,
        typer.Option(
            "--include-live", help="Also prune live files, each only when no process of this machine holds it open."
        ),
    ] = False,
    as_json: JsonOpt = False,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Delete request log and feedback records, and audit records, older than llmops.yaml's retention: policy.

    Rotated files (NAME.<UTC stamp>-N.jsonl): deleted when every record expired, else rewritten atomically.

    A rewritten file keeps exactly its newer lines, byte for byte; lines that cannot be dated are kept.

    The live file a gateway appends to is never rewritten under it: it is skipped (pruned once it rotates).

    With --include-live it is pruned, but only when no process of this machine holds it open.

    Audit records go only when retention.audit_days is set; retention records are never deleted.

    Each run but --dry-run appends one audit record per object (kind retention), even when nothing went.

    Example: llmops logs prune --dry-run
    Example: llmops logs prune --request-log 'logs/replica-*/gateway-requests*.jsonl' --json
    """
    ws = workspace(ws_path)
    live, feedback = (None, None) if request_logs and feedback_logs else _live_paths(ws, config)
    targets = Targets(
        request_logs=tuple(files_of(request_logs, ws.home) if request_logs else default_log_files(live)),
        feedback_logs=tuple(files_of(feedback_logs, ws.home) if feedback_logs else default_log_files(feedback)),
    )
    reporter = RichReporter(err_console() if as_json else console())
    with stdout_to_stderr(active=as_json):  # MLflow prints a line per run it ends
        results = prune(ws, connect(ws), targets, actor=actor(), include_live=include_live, dry_run=dry_run,
                        reporter=reporter)  # fmt: skip
    if as_json:
        print_json([_as_json(r, ws) for r in results])
    else:
        _render(results, ws, dry_run)
