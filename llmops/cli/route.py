"""``llmops route …``: a route's state in the registry (stage pointers, weights, the rollout owning them).

Weights written here are read by every gateway replica within ``refresh.state_interval_s`` (1 s by
default; :mod:`llmops.registry.routestate`), exactly like ``PUT /admin/routes/NAME``; each write is audited.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from llmops.cli.common import JsonOpt, WorkspaceOpt, console, print_json, workspace
from llmops.config.gateway import load_gateway_file
from llmops.config.workspace import Workspace
from llmops.errors import ConfigError, NotFoundError
from llmops.gitinfo import actor
from llmops.names import check_name
from llmops.registry import connect
from llmops.registry.routestate import RouteState

app = typer.Typer(help="Route state in the registry: stage pointers, weights, rollout owner.", no_args_is_help=True)

GATEWAY_FILE = Path("serving") / "gateway.yaml"


def parse_weights(items: list[str]) -> dict[str, int]:
    """``["stable=90", "canary=10"]`` as ``{"stable": 90, "canary": 10}``; BadParameter on anything else."""
    out: dict[str, int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip().isdigit():
            raise typer.BadParameter(f"{item!r}: write TARGET=WEIGHT with an integer weight >= 0, e.g. canary=10")
        if name.strip() in out:
            raise typer.BadParameter(f"target {name.strip()} given twice")
        out[name.strip()] = int(value)
    return out


def _check_targets(ws: Workspace, route: str, weights: dict[str, int]) -> None:
    """When the workspace's gateway file serves ``route``, the weights must name exactly its targets
    (a gateway ignores weights that do not)."""
    path = ws.root / GATEWAY_FILE
    if not path.is_file():
        return
    spec = load_gateway_file(path, display=str(GATEWAY_FILE)).routes.get(route)
    if spec is None:
        return
    names = {t.name for t in spec.targets}
    if set(weights) != names:
        raise ConfigError.at(
            GATEWAY_FILE,
            f"weights name {sorted(weights)}, but route {route} has the targets {sorted(names)}",
            field=f"routes.{route}.targets",
        )


def _text(weights: dict[str, int] | None) -> str:
    return " ".join(f"{k}={v}" for k, v in weights.items()) if weights else "(the gateway file's)"


def _iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if epoch else None


@app.command()
def weights(
    route: Annotated[str, typer.Argument(help="Route name, e.g. support-triage.")],
    targets: Annotated[list[str], typer.Argument(help="TARGET=WEIGHT for every target, e.g. stable=90 canary=10.")],
    force: Annotated[bool, typer.Option(help="Write even while a rollout owns the route (audited as forced).")] = False,
    reason: Annotated[str, typer.Option(help="Why; kept in the audit log.")] = "",
    as_json: JsonOpt = False,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Set a route's target weights in the registry; every gateway replica serves them within ~1 s.

    Refused (exit 2, naming the rollout) while a rollout owns the route, unless --force.

    Example: llmops route weights support-triage stable=90 canary=10 --reason "canary at 10%"
    """
    check_name(route, "route")
    new = parse_weights(targets)
    ws = workspace(ws_path)
    _check_targets(ws, route, new)
    registry = connect(ws)
    before = registry.routes.read(route)
    record = registry.routes.set_weights(route, new, actor=actor(), reason=reason, force=force)
    old = dict(before.weights) if before is not None and before.weights is not None else None
    data = {
        "route": route,
        "from": old,
        "to": new,
        "changed": record is not None,
        "version": int(record.to_version or 0) if record else (before.weights_version if before else 0),
        "forced": bool(record and record.forced),
        "audit": record.record_id if record else None,
    }
    if as_json:
        print_json(data)
        return
    out = console()
    if record is None:
        out.print(f"{route}: weights already {_text(new)} (v{data['version']}); nothing written")
        return
    forced = " [yellow](forced)[/yellow]" if record.forced else ""
    out.print(f"[green]{route}[/green] weights: {_text(old)} → {_text(new)} (v{data['version']}){forced}")
    out.print(f"  audit {record.record_id}; gateways apply it within their refresh.state_interval_s")


def _show_data(state: RouteState, releases: dict[str, str]) -> dict[str, Any]:
    return {
        **state.to_dict(),
        "written_at": _iso(state.written_at),
        "stages": {k: {"version": v, "release": releases.get(k)} for k, v in state.stages.items()},
    }


@app.command()
def show(
    route: Annotated[str, typer.Argument(help="Route name.")],
    as_json: JsonOpt = False,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Show a route's stage pointers, the weights in the registry and the rollout that owns them.

    Example: llmops route show support-triage
    """
    check_name(route, "route")
    registry = connect(workspace(ws_path))
    state = registry.routes.read(route)
    if state is None:
        raise NotFoundError(f"route {route} has no state in the registry yet (nothing promoted, no weights set)")
    releases = {stage: registry.pointers.get(route, version).release.label() for stage, version in state.stages.items()}
    data = _show_data(state, releases)
    if as_json:
        print_json(data)
        return
    out = console()
    table = Table(title=f"route {route}")
    table.add_column("stage")
    table.add_column("release")
    table.add_column("serves")
    for stage, info in sorted(data["stages"].items()):
        table.add_row(escape(stage), f"v{info['version']}", escape(info["release"] or ""))
    out.print(table)
    by = f" by {state.actor} at {data['written_at']}" if state.weights is not None else ""
    out.print(f"weights: {_text(dict(state.weights) if state.weights else None)} (v{state.weights_version}){by}")
    out.print(f"rollout: {state.rollout or '-'}")
