"""``llmops rollout start | resume | abort | status``: the entry points around :class:`Controller`.

``start`` refuses before any traffic moves: a route without a rollout spec, a release without a passing
eval record on the route's required suites (the promotion gate), a route with no production release to
compare with, an open (running or paused) rollout of the route, or a controller already holding the lease.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llmops.config.gateway import load_gateway_file
from llmops.config.rollout import RolloutFile, RouteRollout, StepSpec, load_rollout_file, parse_steps, rollout_arms
from llmops.config.workspace import Workspace
from llmops.errors import ConfigError, LeaseHeld, LlmopsError, NotFoundError, PromotionRefused, RolloutActive
from llmops.events import SILENT, Reporter
from llmops.gitinfo import actor
from llmops.monitor.embeddings import Embedder
from llmops.promotion import gated_release, passing_records
from llmops.registry import Registry, connect
from llmops.registry.lease import Lease, LeaseInfo
from llmops.registry.rollouts import RolloutRecord
from llmops.registry.routestate import RouteState
from llmops.rollout.controller import LEASE_TTL_S, Controller, Observer, RolloutOutcome, lease_key
from llmops.rollout.state import RolloutState, Step

ROLLOUT_FILE = "serving/rollout.yaml"
GATEWAY_FILE = "serving/gateway.yaml"


@dataclass(frozen=True)
class Options:
    """How a controller runs: where its spec is, who reports what, and test hooks."""

    config: Path | None = None
    reporter: Reporter = SILENT
    observer: Observer | None = None
    embedder: Callable[[], Embedder] | None = None
    sleep: Callable[[float], None] = time.sleep
    interval_s: float | None = None  # overrides the spec's


def _spec(ws: Workspace, route: str, options: Options) -> tuple[RolloutFile, RouteRollout]:
    path = options.config or ws.asset_dir("serving") / "rollout.yaml"
    if not path.is_file():
        raise ConfigError.at(
            str(path), "no rollout spec: write serving/rollout.yaml (see README, 'Roll out a release')"
        )
    spec = load_rollout_file(path, display=ws.shown(path))
    if route not in spec.routes:
        known = ", ".join(sorted(spec.routes))
        raise ConfigError.at(ws.shown(path), f"no rollout spec for route {route!r} (routes: {known})", field="routes")
    if options.interval_s is not None:
        spec = spec.model_copy(update={"interval_s": options.interval_s})
    return spec, spec.routes[route]


def _take_lease(registry: Registry, route: str, holder: str) -> Lease:
    got = registry.leases.try_acquire(lease_key(route), holder, LEASE_TTL_S)
    if isinstance(got, LeaseInfo):
        left = max(got.expires_at - time.time(), 0.0)
        raise LeaseHeld(
            f"a rollout controller already runs for route {route}: {got.describe()}; its lease expires in "
            f"{left:.0f} s unless it keeps running",
            holder=got.holder,
        )
    return got


def _controller(
    ws: Workspace, registry: Registry, record: RolloutRecord, state: RolloutState, lease: Lease, options: Options,
    spec: RolloutFile, route_spec: RouteRollout,
) -> Controller:  # fmt: skip
    return Controller(
        ws=ws, registry=registry, spec=spec, route_spec=route_spec, rollout_id=record.rollout_id, state=state,
        lease=lease, reporter=options.reporter, observer=options.observer,
        embedder=options.embedder, sleep=options.sleep,
    )  # fmt: skip


def start(
    ws: Workspace, route: str, *, adapter: str | None, prompt: str | None, steps: str | None = None,
    force: bool = False, reason: str = "", options: Options = Options(),
) -> RolloutOutcome:  # fmt: skip
    """Gate, claim the route, point its canary at the release, and drive the steps (module docstring).

    ``force`` (needs ``reason``) skips the eval gate as ``llmops promote --force`` does: every promotion of
    the rollout is then audited as forced with that reason; the live analysis still judges every step.
    """
    if force and not reason.strip():
        raise LlmopsError("--force needs --reason TEXT: a rollout that skips the eval gate is audited with its reason")
    spec, route_spec = _spec(ws, route, options)
    step_specs: list[StepSpec] = parse_steps(steps, route_spec) if steps else list(route_spec.steps)
    gateway = load_gateway_file(ws.asset_dir("serving") / "gateway.yaml", display=GATEWAY_FILE)
    stable_target, canary_target = rollout_arms(gateway, route)
    registry = connect(ws)
    release = gated_release(registry, route, adapter, prompt)
    if not force:
        passing_records(registry, route, release)  # PromotionRefused before any traffic moves
    production = registry.pointers.at_stage(route, "production")
    if production is None:
        raise PromotionRefused(
            f"route {route} has no production release to compare a canary with; promote one first "
            f"(llmops promote {route} --adapter NAME/VERSION --prompt NAME/VERSION)"
        )
    who = actor()
    lease = _take_lease(registry, route, f"{who} (rollout {route})")
    try:
        open_one = registry.rollouts.open_of(route)
        if open_one is not None:
            raise RolloutActive(
                route, open_one.rollout_id,
                f"route {route} already has a {open_one.status} rollout ({open_one.rollout_id}): "
                f"`llmops rollout resume {route}` continues it, `llmops rollout abort {route}` stops it",
            )  # fmt: skip
        previous = registry.pointers.at_stage(route, "canary")
        exact = release.release
        state = RolloutState(
            route=route, actor=who, adapter=_ref(exact.adapter), prompt=_ref(exact.prompt), label=release.label(),
            stable_target=stable_target, canary_target=canary_target,
            stable_adapter=_ref(production.release.adapter), stable_prompt=_ref(production.release.prompt),
            stable_version=production.version, previous_canary=previous.version if previous else None,
            steps=[Step.of(s) for s in step_specs], forced=reason.strip() if force else "",
        )  # fmt: skip
        record = registry.rollouts.create(route, state.to_dict())
        registry.routes.set_rollout(route, record.rollout_id)
        controller = _controller(ws, registry, record, state, lease, options, spec, route_spec)
        controller.audit("started", f"rollout {record.rollout_id}: steps {[s.weight for s in state.steps]}")
        options.reporter.note(f"rollout {record.rollout_id} of {route}: {release.label()}")
        return controller.run()
    finally:
        lease.release()


def _ref(ref: object | None) -> str | None:
    return None if ref is None else str(ref)


def _open(registry: Registry, route: str) -> RolloutRecord:
    found = registry.rollouts.open_of(route)
    if found is None:
        raise NotFoundError(f"route {route} has no running or paused rollout (llmops rollout status {route})")
    return found


def resume(ws: Workspace, route: str, *, options: Options = Options()) -> RolloutOutcome:
    """Continue the route's open rollout where it stopped; a paused step starts its window again."""
    spec, route_spec = _spec(ws, route, options)
    registry = connect(ws)
    lease = _take_lease(registry, route, f"{actor()} (rollout {route})")
    try:
        record = _open(registry, route)
        state = RolloutState.from_dict(record.state)
        if record.status == "paused" and state.phase == "analysing":
            state.phase = "weights"  # the same weights (no write), a new window
        controller = _controller(ws, registry, record, state, lease, options, spec, route_spec)
        controller.status = "running"
        controller.save()
        options.reporter.note(
            f"resuming rollout {record.rollout_id} of {route} at step {state.step + 1} ({state.phase})"
        )
        return controller.run()
    finally:
        lease.release()


def abort(
    ws: Workspace, route: str, *, reason: str = "", wait_s: float = 60.0, options: Options = Options()
) -> RolloutOutcome:
    """Stop the route's open rollout: canary weight 0 and its pointer back, audited as ``aborted``.

    With no controller running, this process does it; otherwise the running controller is asked and
    does it at its next look (this waits up to ``wait_s`` for that).
    """
    registry = connect(ws)
    record = _open(registry, route)
    why = reason or "aborted by " + actor()
    got = registry.leases.try_acquire(lease_key(route), f"{actor()} (abort {route})", LEASE_TTL_S)
    if isinstance(got, Lease):
        try:
            spec, route_spec = _spec(ws, route, options)
            state = RolloutState.from_dict(record.state)
            controller = _controller(ws, registry, record, state, got, options, spec, route_spec)
            controller.end("aborted", f"aborted: {why}")
            return RolloutOutcome(record.rollout_id, controller.status, controller.state)
        finally:
            got.release()
    registry.rollouts.request_abort(record.rollout_id, why)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        now = registry.rollouts.get(record.rollout_id)
        if not now.is_open:
            return RolloutOutcome(now.rollout_id, now.status, RolloutState.from_dict(now.state))
        options.sleep(1.0)
    raise LlmopsError(
        f"asked the controller of rollout {record.rollout_id} to abort; it has not within {wait_s:.0f} s "
        f"(held by {got.describe()}); it aborts at its next look"
    )


@dataclass(frozen=True)
class RolloutView:
    """What ``llmops rollout status`` shows: the newest rollout of a route and the route's live state."""

    record: RolloutRecord | None
    state: RolloutState | None
    route_state: RouteState | None


def status(ws: Workspace, route: str) -> RolloutView:
    registry = connect(ws)
    records = registry.rollouts.of_route(route, limit=1)
    record = records[0] if records else None
    return RolloutView(record, RolloutState.from_dict(record.state) if record else None, registry.routes.read(route))
