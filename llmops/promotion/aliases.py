"""``llmops prompts promote``: moving a prompt alias by hand, refused where a route serves it.

A stage alias that a route serves goes through the gated path (``llmops promote ROUTE --prompt
NAME/VERSION --to STAGE``): NAME@ALIAS is *served* when a target of a route in
``serving/gateway.yaml`` names ``prompt: NAME@ALIAS``, or has ``release: ALIAS`` and the release
recorded at that stage uses prompt NAME. Any other alias may be moved with a ``--reason``, under the
prompt's lease and audited like a release (``pending`` with its plan → alias → ``moved``).
"""

from __future__ import annotations

from dataclasses import replace

from llmops.config.gateway import load_gateway_file
from llmops.config.workspace import Workspace
from llmops.errors import LlmopsError, PromotionRefused
from llmops.gitinfo import actor
from llmops.promotion.moves import Fault, Move, fault_hook, switch
from llmops.promotion.reconcile import lease_key, reconcile
from llmops.refs import PromptRef, check_alias
from llmops.registry import Registry, connect
from llmops.registry.audit import AuditRecord
from llmops.registry.lease import DEFAULT_WAIT_S


def serving_routes(registry: Registry, name: str, alias: str) -> list[str]:
    """Routes of serving/gateway.yaml that serve prompt ``name@alias`` (see the module docstring)."""
    path = registry.ws.asset_dir("serving") / "gateway.yaml"
    if not path.is_file():
        return []
    spec = load_gateway_file(path, display="serving/gateway.yaml")
    out = []
    for route, route_spec in spec.routes.items():
        for target in [*route_spec.targets, *([route_spec.shadow] if route_spec.shadow else [])]:
            ref = PromptRef.parse(target.prompt) if target.prompt else None
            if ref is not None and ref.name == name and ref.alias == alias:
                out.append(route)
                break
            if target.release == alias:
                recorded = registry.pointers.at_stage(route, alias)
                used = recorded.release.prompt if recorded else None
                if used is not None and used.name == name:
                    out.append(route)
                    break
    return out


def promote_prompt_alias(
    ws: Workspace, name: str, version: int, alias: str, *, reason: str, wait_s: float = DEFAULT_WAIT_S,
    fault: Fault = fault_hook,
) -> AuditRecord:  # fmt: skip
    """Point ``name@alias`` at ``version``: refused where a route serves it, audited with ``reason`` elsewhere."""
    check_alias(alias)
    registry = connect(ws)
    routes = serving_routes(registry, name, alias)
    if routes:
        raise PromotionRefused(
            f"prompt alias {name}@{alias} is served by route(s) {', '.join(routes)}: move it with the gated "
            f"release promotion, e.g. `llmops promote {routes[0]} --prompt {name}/{version} --to {alias}`"
        )
    if not reason.strip():
        raise LlmopsError(f"moving {name}@{alias} needs --reason TEXT: alias moves are audited with their reason")
    target = registry.prompts.get(PromptRef(name, version=version))
    with registry.leases.held(lease_key("prompt", name), f"{actor()} (prompts promote {name}@{alias})",
                              wait_s=wait_s) as lease:  # fmt: skip
        reconcile(registry, "prompt", name)
        old = registry.prompts.alias_version(name, alias)
        record = AuditRecord(
            kind="prompt", object=name, alias=alias, from_version=None if old is None else str(old),
            to_version=str(target.version), actor=actor(), reason=reason,
        )  # fmt: skip
        if old == target.version:
            return replace(record, outcome="unchanged")
        return switch(registry, record, [Move("prompt", name, old, target.version)], alias, lease, fault)
