"""The route table: resolved targets per route, swapped atomically, refreshed in the background.

A route's targets become :class:`ServedTarget` values: which engine, under which model name, with which
compiled prompt and params. Which release a target serves is decided by
:func:`llmops.releases.target_release` (the route's recorded release at the target's stage, else the
target's own references), the same rule evals and promotion use.

The hot path reads ``manager.table`` once per request and uses that table to the end, so requests
in flight finish on the table they started with while a refresh or a weight change swaps in a new
one (one attribute assignment; tables are immutable).

A refresh resolves every route's prompt and adapter references through the :class:`RouteResolver`
(in a worker thread: registry calls block), loads the adapters into their engines, compiles the
prompts, and swaps. A route that fails to resolve keeps its previous release set and reports the
error (``GET /readyz``, ``GET /admin/routes/NAME``); a route that never resolved answers 503.

Weights set through ``PUT /admin/routes/NAME`` override the file's until the route's target names
change, and survive refreshes. They live in this gateway process: with several replicas, set them on
each (sticky assignment is a pure function of key and weights, so replicas with equal weights agree).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from llmops.config.gateway import EngineSpec, RouteSpec, TargetSpec, engine_of
from llmops.errors import InvalidRequestError, LlmopsError, RouteNotFoundError
from llmops.gateway.adapters import AdapterSync
from llmops.gateway.prompting import CompiledPrompt
from llmops.gateway.resolver import ResolvedAdapter, ResolvedPrompt, RouteResolver
from llmops.gateway.routing import bounds, pick
from llmops.releases import target_release

log = logging.getLogger(__name__)

#: header value when a target renders no prompt or serves no adapter (documented in serving/README.md)
_ABSENT = b"none"


@dataclass(frozen=True, slots=True)
class ServedTarget:
    """One resolved target: what a request routed to it is sent as."""

    route: str
    target: str
    engine: str
    model: str  # the name the engine serves it under: an adapter's lora name, or the base model
    prompt: CompiledPrompt | None
    adapter: ResolvedAdapter | None
    params: Mapping[str, Any]  # defaults: the prompt version's params, overridden by the target's
    headers: tuple[tuple[bytes, bytes], ...]  # response headers when the prompt is rendered
    headers_plain: tuple[tuple[bytes, bytes], ...]  # ... and when the request passes through

    @property
    def prompt_version(self) -> str | None:
        return self.prompt.label if self.prompt else None

    @property
    def adapter_version(self) -> str | None:
        return self.adapter.label if self.adapter else None

    def describe(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "engine": self.engine,
            "model": self.model,
            "prompt_version": self.prompt_version,
            "adapter_version": self.adapter_version,
            "params": dict(self.params),
        }


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    targets: tuple[ServedTarget, ...]
    weights: tuple[int, ...]
    upper: tuple[float, ...]
    shadow: ServedTarget | None = None
    shadow_sample: float = 1.0

    def choose(self, point: float) -> ServedTarget:
        return self.targets[pick(point, self.upper, self.weights)]

    def with_weights(self, weights: tuple[int, ...]) -> Route:
        return dataclasses.replace(self, weights=weights, upper=bounds(weights))

    def describe(self) -> dict[str, Any]:
        return {
            "route": self.name,
            "targets": [{**r.describe(), "weight": w} for r, w in zip(self.targets, self.weights, strict=True)],
            "shadow": {**self.shadow.describe(), "sample": self.shadow_sample} if self.shadow else None,
        }


@dataclass(frozen=True)
class RouteTable:
    routes: Mapping[str, Route] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)  # route -> why its last resolution failed
    generation: int = 0
    resolved_at: float = 0.0


def _headers(route: str, target: str, prompt: str | None, adapter: str | None) -> tuple[tuple[bytes, bytes], ...]:
    return (
        (b"x-llmops-route", route.encode()),
        (b"x-llmops-target", target.encode()),
        (b"x-llmops-prompt-version", prompt.encode() if prompt else _ABSENT),
        (b"x-llmops-adapter-version", adapter.encode() if adapter else _ABSENT),
    )


def make_target(
    route: str,
    target: TargetSpec,
    engine: str,
    base_model: str,
    prompt: CompiledPrompt | None,
    adapter: ResolvedAdapter | None,
) -> ServedTarget:
    params = {**(prompt.defaults if prompt else {}), **target.params.as_request()}
    return ServedTarget(
        route=route,
        target=target.name,
        engine=engine,
        model=adapter.lora_name if adapter else base_model,
        prompt=prompt,
        adapter=adapter,
        params=params,
        headers=_headers(route, target.name, prompt.label if prompt else None, adapter.label if adapter else None),
        headers_plain=_headers(route, target.name, None, adapter.label if adapter else None),
    )


@dataclass(frozen=True)
class _Resolved:
    prompts: dict[str, ResolvedPrompt | None]  # target name -> prompt
    adapters: dict[str, ResolvedAdapter | None]


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
    ) -> None:
        self.specs = dict(specs)
        self.engines = engines
        self.resolver = resolver
        self.sync = sync
        self.interval_s = interval_s
        self.retry_s = retry_s  # while a route is unavailable (say its engine is still starting), retry this often
        self.table = RouteTable()
        self._overrides: dict[str, dict[str, int]] = {}
        self._compiled: dict[tuple[str, int, str], CompiledPrompt] = {}
        self._base_models: dict[str, str] = {n: e.model for n, e in engines.items() if e.model}
        self._refresh_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._poked = asyncio.Event()
        self._on_swap = on_swap

    # -- reading ------------------------------------------------------------------------------
    def route(self, name: str) -> Route:
        found = self.table.routes.get(name)
        if found is None:
            raise RouteNotFoundError(name)
        return found

    @property
    def ready(self) -> bool:
        return all(name in self.table.routes for name in self.specs)

    # -- refreshing ---------------------------------------------------------------------------
    def _targets(self, spec: RouteSpec) -> list[TargetSpec]:
        return [*spec.targets, *([spec.shadow] if spec.shadow else [])]

    def _resolve_all(self) -> tuple[dict[str, _Resolved], dict[str, str]]:
        """Blocking: resolve every reference (each distinct reference once per pass)."""
        prompts: dict[str, ResolvedPrompt] = {}
        adapters: dict[str, ResolvedAdapter] = {}
        done: dict[str, _Resolved] = {}
        errors: dict[str, str] = {}
        for name, spec in self.specs.items():
            try:
                resolved = _Resolved({}, {})
                for t in self._targets(spec):
                    engine = engine_of(t, self.engines)
                    release = target_release(name, t, self._base_models.get(engine, engine), self.resolver.release)
                    adapter_ref = str(release.adapter) if release.adapter else None
                    prompt_ref = str(release.prompt) if release.prompt else None
                    if prompt_ref and prompt_ref not in prompts:
                        prompts[prompt_ref] = self.resolver.prompt(prompt_ref)
                    if adapter_ref and adapter_ref not in adapters:
                        adapters[adapter_ref] = self.resolver.adapter(adapter_ref)
                    resolved.prompts[t.name] = prompts[prompt_ref] if prompt_ref else None
                    resolved.adapters[t.name] = adapters[adapter_ref] if adapter_ref else None
                done[name] = resolved
            except Exception as exc:  # noqa: BLE001 - one route's failure must not stop the others; logged
                log.warning("route %s: cannot resolve: %s", name, exc, exc_info=not isinstance(exc, LlmopsError))
                errors[name] = str(exc)
        return done, errors

    def _compile(self, prompt: ResolvedPrompt) -> CompiledPrompt:
        key = (prompt.name, prompt.version, prompt.spec.content_hash())
        if key not in self._compiled:
            self._compiled[key] = CompiledPrompt(prompt)
        return self._compiled[key]

    async def _sync_engines(self, resolved: dict[str, _Resolved], errors: dict[str, str]) -> None:
        needed: dict[str, dict[str, ResolvedAdapter]] = {name: {} for name in self.engines}
        users: dict[str, set[str]] = {name: set() for name in self.engines}
        for route, res in resolved.items():
            for t in self._targets(self.specs[route]):
                engine = engine_of(t, self.engines)
                users[engine].add(route)
                adapter = res.adapters.get(t.name)
                if adapter is not None:
                    needed[engine][adapter.lora_name] = adapter
        for engine, adapters in needed.items():
            if not users[engine]:
                continue
            try:
                report = await self.sync.sync(engine, adapters.values(), load=self.engines[engine].sync_adapters)
            except LlmopsError as exc:
                log.warning("engine %s: adapter sync failed: %s", engine, exc)
                for route in users[engine]:
                    errors.setdefault(route, str(exc))
                    resolved.pop(route, None)
                continue
            if report.base_model and engine not in self._base_models:
                self._base_models[engine] = report.base_model

    def _build(self, name: str, res: _Resolved) -> Route:
        spec = self.specs[name]

        def served(t: TargetSpec) -> ServedTarget:
            engine = engine_of(t, self.engines)
            prompt = res.prompts.get(t.name)
            base = self._base_models.get(engine)
            if base is None:
                raise LlmopsError(f"engine {engine}: base model name unknown (set engines.{engine}.model)")
            return make_target(
                name, t, engine, base, self._compile(prompt) if prompt else None, res.adapters.get(t.name)
            )

        targets = tuple(served(t) for t in spec.targets)
        weights = tuple(t.weight for t in spec.targets)
        override = self._overrides.get(name)
        if override is not None:
            if set(override) == {t.target for t in targets}:
                weights = tuple(override[r.target] for r in targets)
            else:
                del self._overrides[name]
        shadow = served(spec.shadow) if spec.shadow else None
        return Route(name, targets, weights, bounds(weights), shadow, spec.shadow.sample if spec.shadow else 1.0)

    async def refresh(self) -> RouteTable:
        """Resolve every route now and swap the table in; returns the new table."""
        async with self._refresh_lock:
            resolved, errors = await asyncio.to_thread(self._resolve_all)
            await self._sync_engines(resolved, errors)
            routes: dict[str, Route] = {}
            for name in self.specs:
                if name in resolved:
                    try:
                        routes[name] = self._build(name, resolved[name])
                        continue
                    except LlmopsError as exc:
                        errors[name] = str(exc)
                previous = self.table.routes.get(name)
                if previous is not None:
                    routes[name] = previous  # keep serving the last good release set
            # weights may have changed while resolving: take the live ones for untouched routes
            for name, route in routes.items():
                override = self._overrides.get(name)
                if override is not None and set(override) == {r.target for r in route.targets}:
                    routes[name] = route.with_weights(tuple(override[r.target] for r in route.targets))
            self._swap(RouteTable(routes, errors, self.table.generation + 1, time.time()))
            return self.table

    async def set_weights(self, name: str, weights: Mapping[str, int]) -> Route:
        """Set a route's target weights (all targets named, integers >= 0, one positive); swap at once."""
        route = self.route(name)
        names = {r.target for r in route.targets}
        if set(weights) != names:
            raise InvalidRequestError(f"weights must name exactly the targets {sorted(names)}", param="weights")
        if any(not isinstance(w, int) or isinstance(w, bool) or w < 0 for w in weights.values()):
            raise InvalidRequestError("weights must be integers >= 0", param="weights")
        if sum(weights.values()) <= 0:
            raise InvalidRequestError("at least one weight must be positive", param="weights")
        self._overrides[name] = dict(weights)
        current = self.table
        updated = route.with_weights(tuple(weights[r.target] for r in route.targets))
        self._swap(
            dataclasses.replace(current, routes={**current.routes, name: updated}, generation=current.generation + 1)
        )
        return updated

    def _swap(self, table: RouteTable) -> None:
        self.table = table
        if self._on_swap is not None:
            self._on_swap(table)

    # -- background ---------------------------------------------------------------------------
    def poke(self) -> None:
        """Ask the background refresher to run now (e.g. an engine lost an adapter)."""
        self._poked.set()

    async def _loop(self) -> None:
        while True:
            wait_s = self.interval_s if self.ready else min(self.interval_s, self.retry_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poked.wait(), wait_s)
            self._poked.clear()
            try:
                await self.refresh()
            except Exception:  # the refresher must outlive any one failure; logged with its traceback
                log.exception("route refresh failed")

    def start_background(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="llmops-route-refresher")

    async def stop_background(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
