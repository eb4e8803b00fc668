"""What a route serves now: its targets from the workspace's ``serving/gateway.yaml``, their releases from
the registry's stage pointers (else the targets' own references), as the gateway resolves them."""

from __future__ import annotations

from llmops.config.gateway import RouteSpec, TargetSpec, load_gateway_file
from llmops.config.workspace import Workspace
from llmops.errors import ConfigError
from llmops.registry import Registry
from llmops.registry.resolved import ResolvedRelease
from llmops.release import Release
from llmops.releases import target_release

GATEWAY_FILE = "serving/gateway.yaml"


def route_spec(ws: Workspace, route: str, *, needed_by: str) -> RouteSpec:
    """``route`` of the workspace's gateway config; ``needed_by`` says who asks, in the error when it is missing."""
    path = ws.asset_dir("serving") / "gateway.yaml"
    if not path.is_file():
        raise ConfigError.at(GATEWAY_FILE, f"{needed_by} needs the gateway config of route {route!r}; it is missing")
    gateway = load_gateway_file(path, display=GATEWAY_FILE)
    if route not in gateway.routes:
        known = ", ".join(sorted(gateway.routes)) or "none"
        raise ConfigError.at(
            GATEWAY_FILE, f"no route {route!r} ({needed_by} names it; routes: {known})", field="routes"
        )
    return gateway.routes[route]


def target_resolved(registry: Registry, route: str, target: TargetSpec) -> ResolvedRelease:
    """The release ``target`` of ``route`` serves now, resolved to exact versions."""

    def at_stage(r: str, stage: str) -> Release | None:
        recorded = registry.pointers.at_stage(r, stage)
        return None if recorded is None else recorded.release

    base_model = registry.ws.settings.models.base_model
    return registry.resolve(target_release(route, target, base_model, at_stage))
