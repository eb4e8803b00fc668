"""The route table: resolved targets per route, swapped atomically, refreshed in the background.

A route's targets become :class:`~llmops.gateway.table.ServedTarget` values: which engine, under
which model name, with which compiled prompt and params. Which release a target serves is decided by
:func:`llmops.releases.target_release` (the route's recorded release at the target's stage, else the
target's own references), the same rule evals and promotion use.

The hot path reads ``manager.table`` once per request and uses that table to the end, so requests
in flight finish on the table they started with while a refresh or a weight change swaps in a new
one (one attribute assignment; tables are immutable).

A refresh resolves every target through the :class:`RouteResolver` (in a worker thread: registry calls
block; see :mod:`llmops.gateway.resolution`), loads the adapters into their engines, compiles the
prompts, and swaps. **Last-known-good, per target**: a target that fails to resolve (registry error,
missing alias, adapter that fails its check, engine that refuses the adapter) keeps serving exactly what
it served before, and the other targets of its route are refreshed as usual; a registry failure never
makes a target fall back to its configured references. The table then lists the failure
(``errors``, ``stale``): ``GET /readyz`` says ``degraded`` and ``llmops_gateway_resolve_failures_total``
counts it. A route none of whose refreshes ever succeeded is missing from the table and answers 503.
While the table is degraded the refresher retries sooner (``retry_s``, doubling up to ``interval_s``); a
route that never resolved is retried every ``retry_s``.

Weights are route state in the registry (:mod:`llmops.registry.routestate`), shared by every replica:
``PUT /admin/routes/NAME`` writes them there (:meth:`RouteManager.write_weights`) and then applies them
here; every replica reads each route's state every ``state_interval_s`` (and before every full refresh,
so a restarted replica comes up with them) and applies a new weights version at once
(:mod:`llmops.gateway.statesync`), so a change serves on the whole fleet within about a second. Registry
weights override the file's while they name exactly the route's targets. A moved stage pointer seen by
a state read starts a full refresh at once. A failed state read keeps the last state. Without a
registry (:class:`~llmops.gateway.resolver.StaticResolver`) a PUT applies to this process only.
Sticky assignment is a pure function of key and weights, so replicas with equal weights agree.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping

from llmops.config.gateway import EngineSpec, RouteSpec, TargetSpec, engine_of
from llmops.errors import InvalidRequestError, LlmopsError, RouteNotFoundError
from llmops.gateway.adapters import AdapterSync
from llmops.gateway.prompting import CompiledPrompt
from llmops.gateway.resolution import Failure, Pick, failure_of, resolve_targets, targets_of
from llmops.gateway.resolver import ResolvedAdapter, ResolvedPrompt, RouteResolver
from llmops.gateway.routing import bounds
from llmops.gateway.statesync import StateTracker, read_states
from llmops.gateway.table import Route, RouteTable, ServedTarget, make_target
from llmops.registry.routestate import check_weights

__all__ = ["Route", "RouteManager", "RouteTable", "ServedTarget", "make_target"]  # the table's values live in .table

log = logging.getLogger(__name__)


class RouteManager:
    """Owns the current :class:`RouteTable`; refreshes it and applies weight changes."""

    def __init__(
        self,
        specs: Mapping[str, RouteSpec],
        engines: Mapping[str, EngineSpec],
        resolver: RouteResolver,
        sync: AdapterSync,
        *,
        interval_s: float = 30.0,
        retry_s: float = 2.0,
        on_swap: Callable[[RouteTable], None] | None = None,
        state_interval_s: float = 1.0,
        on_state_error: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        self.specs = dict(specs)
        self.engines = engines
        self.resolver = resolver
        self.sync = sync
        self.interval_s = interval_s
        self.retry_s = retry_s  # while a route is unavailable or degraded, retry this soon (doubling)
        self.table = RouteTable()
        self._overrides: dict[str, dict[str, int]] = {}
        self._compiled: dict[tuple[str, int, str], CompiledPrompt] = {}
        self._base_models: dict[str, str] = {n: e.model for n, e in engines.items() if e.model}
        self._refresh_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # set by poke() (refresh now) and by a refresh that changed the schedule
        self._refresh_now = False
        self._on_swap = on_swap
        self._failed_refreshes = 0
        self.state_interval_s = state_interval_s
        self.states = StateTracker()
        self._on_state_error = on_state_error
        # route -> local weight writes begun + ended: a state read that overlapped one may be stale
        self._writes: dict[str, int] = {}
        self._state_task: asyncio.Task[None] | None = None

    # -- reading ------------------------------------------------------------------------------
    def route(self, name: str) -> Route:
        found = self.table.routes.get(name)
        if found is None:
            raise RouteNotFoundError(name)
        return found

    @property
    def ready(self) -> bool:
        """Every route resolved at least once (some targets may serve their last-known-good)."""
        return all(name in self.table.routes for name in self.specs)

    @property
    def unresolved(self) -> list[str]:
        """Routes that never resolved (they answer 503)."""
        return sorted(set(self.specs) - set(self.table.routes))

    # -- refreshing ---------------------------------------------------------------------------
    def _previous(self, route: str, target: str) -> ServedTarget | None:
        """What ``route``'s ``target`` serves now (its last-known-good), if anything."""
        found = self.table.routes.get(route)
        if found is None:
            return None
        if found.shadow is not None and found.shadow.target == target:
            return found.shadow
        return next((t for t in found.targets if t.target == target), None)

    def _compile(self, prompt: ResolvedPrompt) -> CompiledPrompt:
        key = (prompt.name, prompt.version, prompt.spec.content_hash())
        if key not in self._compiled:
            self._compiled[key] = CompiledPrompt(prompt)
        return self._compiled[key]

    async def _sync_engines(self, outcomes: dict[str, dict[str, Pick | Failure]]) -> None:
        """Load what the targets need into their engines; a target whose engine fails becomes a Failure.

        Adapters that failed targets keep serving (their last-known-good) count as needed too, so a sync
        never unloads them and reloads them after an engine restart.
        """
        needed: dict[str, dict[str, ResolvedAdapter]] = {name: {} for name in self.engines}
        users: dict[str, list[tuple[str, str]]] = {name: [] for name in self.engines}
        for route, picks in outcomes.items():
            for t in targets_of(self.specs[route]):
                engine = engine_of(t, self.engines)
                outcome = picks[t.name]
                served = self._previous(route, t.name)
                adapter = outcome.adapter if isinstance(outcome, Pick) else (served.adapter if served else None)
                if isinstance(outcome, Pick) or served is not None:
                    users[engine].append((route, t.name))
                if adapter is not None:
                    needed[engine][adapter.lora_name] = adapter
        for engine, adapters in needed.items():
            if not users[engine]:
                continue
            try:
                report = await self.sync.sync(engine, adapters.values(), load=self.engines[engine].sync_adapters)
            except LlmopsError as exc:
                for route, target in users[engine]:
                    if isinstance(outcomes[route][target], Pick):
                        outcomes[route][target] = failure_of(route, target, exc)
                continue
            if report.base_model and engine not in self._base_models:
                self._base_models[engine] = report.base_model

    def _served(self, route: str, t: TargetSpec, outcome: Pick | Failure) -> ServedTarget | Failure:
        if isinstance(outcome, Failure):
            return outcome
        engine = engine_of(t, self.engines)
        base = self._base_models.get(engine)
        if base is None:
            error = LlmopsError(f"engine {engine}: base model name unknown (set engines.{engine}.model)")
            return failure_of(route, t.name, error)
        prompt = self._compile(outcome.prompt) if outcome.prompt else None
        return make_target(route, t, engine, base, prompt, outcome.adapter)

    def _build(self, name: str, picks: dict[str, Pick | Failure]) -> tuple[Route | None, list[Failure], list[str]]:
        """The route from this pass (failed targets keep their last-known-good), its failures, stale targets.

        None when a target failed that never resolved before (the route is unavailable).
        """
        spec = self.specs[name]
        failures: list[Failure] = []
        stale: list[str] = []

        def served(t: TargetSpec) -> ServedTarget | None:
            got = self._served(name, t, picks[t.name])
            if isinstance(got, ServedTarget):
                return got
            failures.append(got)
            previous = self._previous(name, t.name)
            if previous is not None:
                stale.append(t.name)
            return previous

        primary = [served(t) for t in spec.targets]
        shadow = served(spec.shadow) if spec.shadow else None  # a shadow that never resolved is left out
        targets = tuple(t for t in primary if t is not None)
        if len(targets) != len(primary):
            return None, failures, stale
        weights = tuple(t.weight for t in spec.targets)
        override = self._overrides.get(name)
        if override is not None:
            if set(override) == {t.target for t in targets}:
                weights = tuple(override[r.target] for r in targets)
            else:
                del self._overrides[name]
        sample = spec.shadow.sample if spec.shadow else 1.0
        return Route(name, targets, weights, bounds(weights), shadow, sample), failures, stale

    async def refresh(self) -> RouteTable:
        """Resolve every target now and swap the table in; returns the new table."""
        async with self._refresh_lock:
            await self.read_state(full=True)
            outcomes = await asyncio.to_thread(
                resolve_targets, self.specs, self.engines, dict(self._base_models), self.resolver
            )
            await self._sync_engines(outcomes)
            routes: dict[str, Route] = {}
            errors: dict[str, str] = {}
            stale: dict[str, tuple[str, ...]] = {}
            failures: list[Failure] = []
            for name in self.specs:
                route, failed, kept = self._build(name, outcomes[name])
                if route is not None:
                    routes[name] = route
                if failed:
                    errors[name] = "; ".join(f"target {f.target}: {f.message}" for f in failed)
                    failures.extend(failed)
                if kept:
                    stale[name] = tuple(kept)
            # weights may have changed while resolving: take the live ones
            for name, route in routes.items():
                override = self._overrides.get(name)
                if override is not None and set(override) == {r.target for r in route.targets}:
                    routes[name] = route.with_weights(tuple(override[r.target] for r in route.targets))
            table = RouteTable(routes, errors, self.table.generation + 1, time.time(), stale, tuple(failures))
            was_degraded = self.table.degraded or not self.ready
            self._failed_refreshes = self._failed_refreshes + 1 if errors else 0
            self._swap(table)
            if self._task is not None and was_degraded != (table.degraded or not self.ready):
                self._wake.set()  # the background refresher's wait depends on it
            return self.table

    async def read_state(self, *, full: bool = False) -> bool:
        """Read every route's state (worker thread) and apply new weights; True when a stage pointer moved
        since the last full refresh (``full``: this is one, remember its pointers instead)."""
        tickets = dict(self._writes)
        reads = await asyncio.to_thread(read_states, self.resolver, list(self.specs))
        moved = False
        for name, got in reads.items():
            if isinstance(got, BaseException):
                self.states.failed(name, got)
                if self._on_state_error is not None:
                    self._on_state_error(name, got)
                continue
            if got is None:
                continue
            if full:
                self.states.saw(name, got)
            else:
                moved = moved or self.states.moved(name, got)
            if self._writes.get(name, 0) != tickets.get(name, 0):
                continue  # a local write overlapped this read: it may predate it; the next read decides
            weights = self.states.weights(name, [t.name for t in self.specs[name].targets], got)
            if weights is not None:
                self._apply_weights(name, weights)
        return moved

    def _checked(self, name: str, weights: Mapping[str, int]) -> dict[str, int]:
        names = {r.target for r in self.route(name).targets}
        if set(weights) != names:
            raise InvalidRequestError(f"weights must name exactly the targets {sorted(names)}", param="weights")
        return check_weights(weights)

    async def write_weights(
        self, name: str, weights: Mapping[str, int], *, actor: str, force: bool = False, reason: str = ""
    ) -> Route:
        """Record a route's weights in the registry (every replica applies them), then apply them here.

        RolloutActive while a rollout owns the route (unless ``force``); RegistryError (nothing applied)."""
        checked = self._checked(name, weights)
        self._writes[name] = self._writes.get(name, 0) + 1
        try:
            await asyncio.to_thread(self.resolver.write_weights, name, checked, actor=actor, force=force, reason=reason)
        finally:
            self._writes[name] += 1
        return await self.set_weights(name, checked)

    async def set_weights(self, name: str, weights: Mapping[str, int]) -> Route:
        """Set a route's target weights in this process only (all targets named, integers >= 0, one positive)."""
        self._apply_weights(name, self._checked(name, weights))
        return self.route(name)

    def _apply_weights(self, name: str, weights: Mapping[str, int]) -> None:
        """Weights in force from now on (and across refreshes); the table swaps at once when they change."""
        self._overrides[name] = dict(weights)
        route = self.table.routes.get(name)
        if route is None or set(weights) != {r.target for r in route.targets}:
            return  # not resolved yet: the refresh that builds it applies them
        new = tuple(weights[r.target] for r in route.targets)
        if new != route.weights:
            current = self.table
            routes = {**current.routes, name: route.with_weights(new)}
            self._swap(dataclasses.replace(current, routes=routes, generation=current.generation + 1, failures=()))

    def _swap(self, table: RouteTable) -> None:
        self.table = table
        if self._on_swap is not None:
            self._on_swap(table)

    # -- background ---------------------------------------------------------------------------
    def poke(self) -> None:
        """Ask the background refresher to run now (e.g. an engine lost an adapter)."""
        self._refresh_now = True
        self._wake.set()

    def _wait_s(self) -> float:
        if not self.ready:  # a route is unavailable (say its engine is still starting): retry soon
            return min(self.interval_s, self.retry_s)
        if self.table.degraded:  # serving last-known-good: retry sooner, backing off while the fault lasts
            return min(self.interval_s, self.retry_s * 2 ** min(max(self._failed_refreshes - 1, 0), 8))
        return self.interval_s

    async def _loop(self) -> None:
        while True:
            try:  # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel that meets a wake-up
                async with asyncio.timeout(self._wait_s()):
                    await self._wake.wait()
                woken = True
            except TimeoutError:
                woken = False
            self._wake.clear()
            if woken and not self._refresh_now:
                continue  # a refresh elsewhere (say POST /admin/reload) changed the schedule: wait anew
            self._refresh_now = False
            try:
                await self.refresh()
            except Exception:  # the refresher must outlive any one failure; logged with its traceback
                log.exception("route refresh failed")

    async def _state_loop(self) -> None:
        while True:
            await asyncio.sleep(self.state_interval_s)
            try:
                if await self.read_state():
                    self.poke()  # a stage pointer moved: resolve now, not at the next interval
            except Exception:  # the reader must outlive any one failure; logged with its traceback
                log.exception("route state read failed")

    def start_background(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="llmops-route-refresher")
        if self._state_task is None:
            self._state_task = asyncio.create_task(self._state_loop(), name="llmops-route-state")

    async def stop_background(self) -> None:
        tasks = [t for t in (self._task, self._state_task) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = self._state_task = None
