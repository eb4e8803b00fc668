"""``llmops trace REQUEST_ID``: one answer's whole chain, as a tree or as JSON with a digest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.tree import Tree

from llmops.cli.common import JsonOpt, WorkspaceOpt, console, err_console, print_json, workspace
from llmops.config.gateway import load_gateway_file
from llmops.config.workspace import Workspace
from llmops.governance.lineage import DatasetLineage, ReleaseLineage
from llmops.governance.trace import RequestNotFound, Trace, digest_of, target_stages, trace_request
from llmops.registry import connect

#: where the gateway writes (every replica's file and the rotated ones), relative to the llmops home
DEFAULT_LOGS = ("logs/*requests*.jsonl",)
DEFAULT_FEEDBACK = ("logs/*feedback*.jsonl",)


def _under_home(ws: Workspace, globs: list[str] | None, default: tuple[str, ...]) -> list[str]:
    return [g if Path(g).is_absolute() else str(ws.home / g) for g in (globs or default)]


def trace(
    request_id: Annotated[str, typer.Argument(help="The answer's x-request-id (32 hex characters).")],
    log: Annotated[
        list[str] | None,
        typer.Option(
            help="Request log file or glob (repeatable); relative to the llmops home. Default: logs/*requests*.jsonl."
        ),
    ] = None,
    feedback_log: Annotated[
        list[str] | None, typer.Option(help="Feedback log file or glob (repeatable). Default: logs/*feedback*.jsonl.")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="Gateway config naming each target's stage (default: serving/gateway.yaml when present)."),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 when a record of the chain is missing or a field is not recorded.")
    ] = False,
    verify: Annotated[
        Path | None,
        typer.Option(
            help="Check a saved `--json` trace: recompute its digest and compare (no registry needed).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,  # fmt: skip
    as_json: JsonOpt = False,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Trace an answer back to its release, prompt, adapter, training data, evals and approvers.

    Reads the request logs of every replica (rotated files too) and the registry: the release serving at
    that moment comes from the stage pointer's history, not from today's pointer. Prints a tree, or with
    --json one document whose `digest` (sha256 of its canonical JSON without `digest` and `log`) an auditor
    can recompute with --verify. Exit 1: the id is in no log (the message says what was searched and whether
    retention pruned it), or --strict and the chain has a gap.

    Example: llmops trace 0193a4f2c1d84e6fa9b7c3d2e1f00a11 --log 'logs/*requests*.jsonl' --json > trace.json
    """
    if verify is not None:
        _verify(verify)
        return
    ws = workspace(ws_path)
    registry = connect(ws)
    gateway = config or ws.asset_dir("serving") / "gateway.yaml"
    stages = target_stages(load_gateway_file(gateway, display=ws.shown(gateway))) if config or gateway.is_file() else {}
    try:
        result = trace_request(
            registry, request_id.strip().lower(), logs=_under_home(ws, log, DEFAULT_LOGS),
            feedback_logs=_under_home(ws, feedback_log, DEFAULT_FEEDBACK), stages=stages,
        )  # fmt: skip
    except RequestNotFound as exc:
        err_console().print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None
    if as_json:
        print_json(result.document())
    else:
        console().print(_tree(result))
    problems = [*result.gaps, *(f"not recorded: {p}" for p in result.not_recorded)]
    if strict and problems:
        err_console().print(
            f"[red]--strict:[/red] {len(problems)} gap(s) in the chain: " + "; ".join(problems), soft_wrap=True
        )
        raise typer.Exit(1)


def _verify(path: Path) -> None:
    out = console()
    try:
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        err_console().print(f"[red]error:[/red] {path}: not JSON ({exc})")
        raise typer.Exit(1) from None
    computed = digest_of(document)
    if computed != document.get("digest"):
        err_console().print(
            f"[red]digest mismatch[/red] {path}: recorded {document.get('digest')}, computed {computed}"
        )
        raise typer.Exit(1)
    out.print(f"[green]ok[/green] {path}: digest {computed}")


def _kv(tree: Tree, label: str, value: Any) -> None:
    tree.add(f"[bold]{label}[/bold] {escape(str(value))}")


def _datasets(node: Tree, datasets: tuple[DatasetLineage, ...]) -> None:
    for d in datasets:
        rows = f", {d.rows} rows" if d.rows is not None else ""
        pull = f" — {d.pull_command}" if d.stored else " — [red]files not stored[/red]"
        node.add(f"{d.role}: {escape(d.path)} [dim]{d.fingerprint[:16]}{rows}[/dim]{pull}")


def _lineage(tree: Tree, lineage: ReleaseLineage) -> None:
    release = tree.add(f"[bold]release[/bold] {escape(lineage.release.label())} [dim]key {lineage.key[:16]}[/dim]")
    if lineage.prompt is not None:
        p = lineage.prompt
        node = release.add(f"[bold]prompt[/bold] {p.ref} [dim]sha256 {p.content_sha256[:16]}[/dim]")
        dirty = " (uncommitted changes)" if p.git_dirty else ""
        node.add(f"{escape(p.path)} at git {escape(p.git_commit)}{dirty}")
    elif lineage.release.prompt is None:
        release.add("[bold]prompt[/bold] none (the request's own messages)")
    if lineage.adapter is not None:
        a = lineage.adapter
        node = release.add(f"[bold]adapter[/bold] {a.ref} [dim]sha256 {a.sha256[:16]}[/dim]")
        node.add(f"base model {escape(a.base_model)} [dim]sha256 {a.base_model_sha256[:16]}[/dim]")
        job = a.training.get("job", "")
        node.add(f"training run {a.run_id} {escape(str(job))} ({a.training.get('status', 'not recorded')}); "
                 f"job spec sha256 {a.job_spec_sha256[:16]}; git {escape(a.git_commit)}")  # fmt: skip
        if a.init_adapter:
            node.add(f"continued from {escape(a.init_adapter)}")
        _datasets(node.add("data"), a.datasets)
    elif lineage.release.adapter is None:
        release.add("[bold]adapter[/bold] none (the base model alone)")
    evals = release.add(f"[bold]evals[/bold] {len(lineage.evals)} record(s)")
    for e in lineage.evals:
        colour = "green" if e.verdict == "pass" else "red"
        node = evals.add(f"{escape(e.suite)} [{colour}]{e.verdict}[/{colour}] [dim]{e.run_id}[/dim]")
        shown = ", ".join(f"{k} {v:.3g}" for k, v in list(e.metrics.items())[:8])
        node.add(escape(shown) + (" …" if len(e.metrics) > 8 else ""))
        _datasets(node, e.datasets)
        for report in e.reports:
            node.add(f"[dim]{escape(report)}[/dim]")


def _tree(t: Trace) -> Tree:
    r = t.request
    tree = Tree(
        f"[bold]request {t.request_id}[/bold] {r.get('time_iso')} route {r.get('route')} → target {r.get('target')}"
    )
    _kv(tree, "status", f"{r.get('status')} in {r.get('latency_ms')} ms, key {r.get('api_key')}")
    if r.get("shadow_of"):
        _kv(tree, "shadow of", r["shadow_of"])
    if t.shadows:
        _kv(tree, "shadow answers", ", ".join(t.shadows))
    _kv(tree, "served by", t.served_by.note)
    _kv(tree, "base model", f"{t.base_model['name']} sha256 {t.base_model['sha256']}")
    _lineage(tree, t.lineage)
    approvals = tree.add(f"[bold]approvals[/bold] {len(t.approvals)} record(s)")
    for a in t.approvals:
        forced = " [red]forced[/red]" if a.forced else ""
        moved = f"{a.from_version or '-'} → {a.to_version or '-'}"
        approvals.add(f"{a.time} {a.kind} {escape(a.object)}@{a.alias} {moved} {a.outcome} by {escape(a.actor)}{forced}"
                      + (f": {escape(a.reason)}" if a.reason else ""))  # fmt: skip
    if t.weights:
        _kv(tree, "weights then", f"{t.weights['weights']} set by {t.weights['set_by']} at {t.weights['at']}")
    _kv(tree, "monitoring", json.dumps(t.monitoring) if t.monitoring else "no monitor run covered this time")
    for fb in t.feedback:
        _kv(tree, "feedback", f"score {fb.get('score')} label {fb.get('label')} by {fb.get('api_key')}")
    if t.gaps:
        gaps = tree.add(f"[red]gaps[/red] {len(t.gaps)}")
        for gap in t.gaps:
            gaps.add(escape(gap))
    if t.not_recorded:
        tree.add("[yellow]not recorded[/yellow] " + escape(", ".join(t.not_recorded)))
    tree.add(f"[dim]log {t.log.get('file')}:{t.log.get('line')}[/dim]")
    tree.add(f"[bold]digest[/bold] {t.digest}")
    return tree
