"""The eval gate of a promotion: which suites a route requires and which records let a release pass.

A release passes when, for every suite in ``evals/`` that targets the route with ``required: true``,
a passing eval record exists for exactly that release — matched by :attr:`Release.key`, so base model,
adapter version, prompt version *and params* must all be the same.

What "params" means for a promotion: ``llmops eval run`` evaluates a route suite through the route's
first target in ``serving/gateway.yaml`` (its ``params``, see :func:`llmops.releases.configured_release`)
on the workspace base model, and the gateway serves a recorded release with its target's params. So
the release a promotion gates (and records in the pointer) is: workspace base model + the adapter and
prompt versions given + the params of the route's first target (none when the route is not configured).
Changing a route's params therefore needs a fresh eval record before the next promotion.

A route that no required suite targets is refused (a typo in a route name must not promote); the
message lists the routes the required suites do target. ``--force --reason`` overrides both checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmops.config.gateway import load_gateway_file
from llmops.config.workspace import Workspace
from llmops.errors import PromotionRefused
from llmops.evals.files import load_suite
from llmops.evals.spec import EvalSuite
from llmops.registry import Registry
from llmops.registry.resolved import ResolvedRelease
from llmops.release import Release
from llmops.validate import yaml_files


@dataclass(frozen=True)
class RequiredSuite:
    path: Path
    suite: EvalSuite
    suite_hash: str


def _required(ws: Workspace) -> list[RequiredSuite]:
    out = []
    for path in yaml_files(ws.asset_dir("evals")):
        suite, _, case_bytes = load_suite(path)
        if suite.required:
            out.append(RequiredSuite(path, suite, suite.suite_hash(case_bytes)))
    return out


def required_suites(ws: Workspace, route: str) -> list[RequiredSuite]:
    """Suites in ``evals/`` that target ``route`` and are marked ``required: true``."""
    return [r for r in _required(ws) if r.suite.target.route == route]


def route_params(ws: Workspace, route: str) -> dict[str, Any]:
    """The params a route's suites evaluate with: its first target's in serving/gateway.yaml ({} when absent)."""
    path = ws.asset_dir("serving") / "gateway.yaml"
    if not path.is_file():
        return {}
    spec = load_gateway_file(path, display="serving/gateway.yaml")
    if route not in spec.routes:
        return {}
    return spec.routes[route].targets[0].params.as_request()


def gated_release(registry: Registry, route: str, adapter: str | None, prompt: str | None) -> ResolvedRelease:
    """The exact release a promotion of (adapter, prompt) on ``route`` gates and records (module docstring)."""
    ws = registry.ws
    wanted = Release.of(ws.settings.models.base_model, adapter, prompt, route_params(ws, route))
    return registry.resolve(wanted)


def passing_records(registry: Registry, route: str, release: ResolvedRelease) -> list[str]:
    """Eval record ids proving ``release`` passed every required suite of ``route``; else PromotionRefused."""
    ws = registry.ws
    everything = _required(ws)
    mine = [r for r in everything if r.suite.target.route == route]
    if not mine:
        others = sorted({f"{r.suite.target.route} ({ws.shown(r.path)})" for r in everything if r.suite.target.route})
        found = f"required suites target: {', '.join(others)}" if others else "there is no required suite at all"
        raise PromotionRefused(
            f"no required eval suite in evals/ targets route {route!r} ({found}); check the route name, "
            "or use --force --reason TEXT"
        )
    ids, missing, near = [], [], []
    key = release.key
    for req in mine:
        passed = registry.evals.find(suite_hash=req.suite_hash, verdict="pass")
        exact = [r for r in passed if r.release.is_exact and r.release.key == key]
        if exact:
            ids.append(exact[0].run_id)
            continue
        missing.append(ws.shown(req.path))
        same_refs = (release.release.adapter, release.release.prompt)
        near += [r.run_id for r in passed if (r.release.adapter, r.release.prompt) == same_refs]
    if missing:
        adapter = release.release.adapter
        how = f"llmops eval run SUITE --candidate {adapter}" if adapter else "llmops eval run SUITE (base model)"
        hint = ""
        if near:
            hint = (
                f" (record(s) {', '.join(near[:3])} passed with the same adapter and prompt but another base model "
                f"or params; this release is base model {release.base_model} with params "
                f"{dict(release.release.params) or '{}'})"
            )
        raise PromotionRefused(
            f"no passing eval record for {release.label()} on required suite(s) {', '.join(missing)}{hint}; "
            f"run `{how}` first, or use --force --reason TEXT"
        )
    return ids
