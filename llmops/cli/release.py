"""``llmops promote`` and ``llmops rollback``: gated alias moves of a route's release, audited."""

from __future__ import annotations

from typing import Annotated

import typer

from llmops.cli.common import WorkspaceOpt, console, workspace
from llmops.names import check_name
from llmops.promotion import promote as do_promote
from llmops.promotion import rollback as do_rollback
from llmops.registry.lease import DEFAULT_WAIT_S

WaitOpt = Annotated[
    float, typer.Option("--wait", min=0, help="Seconds to wait while another promotion of the route holds its lease.")
]


def promote(
    route: Annotated[str, typer.Argument(help="Route name, e.g. support-triage.")],
    adapter: Annotated[str | None, typer.Option(help="Adapter version NAME/VERSION (omit for the base model).")] = None,
    prompt: Annotated[str | None, typer.Option(help="Prompt version NAME/VERSION.")] = None,
    to: Annotated[str, typer.Option("--to", help="Stage: canary or production.")] = "production",
    force: Annotated[
        bool, typer.Option(help="Skip the eval-record check (needs --reason; audited as forced).")
    ] = False,
    reason: Annotated[str, typer.Option(help="Why; kept in the audit log.")] = "",
    wait: WaitOpt = DEFAULT_WAIT_S,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Promote a release (adapter + prompt) of a route to canary or production, if its evals passed.

    Needs a passing eval record for exactly this release (base model, adapter, prompt and the route's
    params) on every suite in evals/ that targets the route with `required: true`; a route that no
    required suite targets is refused. One promotion per route at a time (others wait up to --wait);
    aliases move all-or-nothing; the audit log records the move and the eval records.

    Example: llmops promote support-triage --adapter support-triage/2 --prompt support-triage/1 --to canary
    """
    check_name(route, "route")
    record = do_promote(
        workspace(ws_path), route, adapter=adapter, prompt=prompt, stage=to, force=force, reason=reason, wait_s=wait
    )
    out = console()
    if record.outcome == "unchanged":
        out.print(f"{route}@{to} already serves release v{record.to_version} ({record.detail})")
        return
    forced = " [yellow](forced)[/yellow]" if record.forced else ""
    out.print(
        f"[green]promoted[/green] {route}@{to}: release v{record.from_version or '-'} → v{record.to_version}{forced}"
    )
    out.print(f"  {record.detail}; eval records: {', '.join(record.eval_records) or '-'}; audit {record.record_id}")


def rollback(
    route: Annotated[str, typer.Argument(help="Route name.")],
    to: Annotated[str, typer.Option("--stage", help="Stage to roll back.")] = "production",
    reason: Annotated[str, typer.Option(help="Why; kept in the audit log.")] = "",
    wait: WaitOpt = DEFAULT_WAIT_S,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Restore the release that the last promotion of ROUTE replaced (from the audit log).

    Example: llmops rollback support-triage --reason "canary error rate"
    """
    check_name(route, "route")
    record = do_rollback(workspace(ws_path), route, stage=to, reason=reason, wait_s=wait)
    console().print(
        f"[green]rolled back[/green] {route}@{to}: release v{record.from_version} → v{record.to_version} ({record.detail})"
    )
