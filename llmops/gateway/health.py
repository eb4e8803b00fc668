"""Readiness: ``ok``, ``degraded`` or ``unavailable``, from the route table and cached engine health.

* ``ok`` (200): every target resolved in the last refresh and every engine in use is healthy;
* ``degraded`` (200, so load balancers keep the replica): serving, but the last refresh failed for
  some target (it keeps serving its last-known-good release) or some engine in use is unhealthy;
* ``unavailable`` (503): a route never resolved, or no engine in use is healthy.

The public ``GET /readyz`` answers only ``{"status": ...}``; ``GET /admin/status`` (admin scope) adds
the details: engines, unresolved routes, stale targets and the (redacted) errors. Engine health is
cached for ``ttl_s`` and one check per engine is in flight at a time, so probes cannot hammer engines.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from llmops.gateway.routes import RouteManager
from llmops.gateway.upstream import Upstream

Status = Literal["ok", "degraded", "unavailable"]


class EngineHealth:
    """``healthy()`` of each engine, cached for ``ttl_s`` and until the route table changes (a refresh
    re-probes); concurrent callers share one check."""

    def __init__(self, upstreams: Mapping[str, Upstream], *, ttl_s: float = 2.0) -> None:
        self._upstreams = upstreams
        self._ttl_s = ttl_s
        self._known: dict[str, tuple[float, int, bool]] = {}  # engine -> (checked at, table generation, healthy)
        self._checks: dict[str, asyncio.Task[bool]] = {}

    async def _check(self, name: str, generation: int) -> bool:
        try:
            healthy = await self._upstreams[name].healthy()
        except Exception:  # noqa: BLE001 - a probe that raises is an unhealthy engine, not a failed /readyz
            healthy = False
        self._known[name] = (time.monotonic(), generation, healthy)
        return healthy

    async def one(self, name: str, generation: int = 0) -> bool:
        known = self._known.get(name)
        if known is not None and known[1] == generation and time.monotonic() - known[0] < self._ttl_s:
            return known[2]
        task = self._checks.get(name)
        if task is None or task.done():
            check = self._check(name, generation)
            task = self._checks[name] = asyncio.create_task(check, name=f"llmops-health-{name}")
        return await asyncio.shield(task)

    async def of(self, names: Iterable[str], generation: int = 0) -> dict[str, bool]:
        ordered = sorted(set(names))
        found = await asyncio.gather(*(self.one(n, generation) for n in ordered))
        return dict(zip(ordered, found, strict=True))


@dataclass(frozen=True)
class Readiness:
    status: Status
    engines: Mapping[str, bool]
    unresolved_routes: tuple[str, ...]
    stale_targets: Mapping[str, tuple[str, ...]]
    errors: Mapping[str, str]
    generation: int
    resolved_at: float

    @property
    def http_status(self) -> int:
        return 503 if self.status == "unavailable" else 200

    def public(self) -> dict[str, str]:
        """What the unauthenticated ``/readyz`` says: the status word, nothing else."""
        return {"status": self.status}

    def details(self) -> dict[str, Any]:
        """``GET /admin/status``: the status and why."""
        return {
            "status": self.status,
            "engines": dict(self.engines),
            "unresolved_routes": list(self.unresolved_routes),
            "stale_targets": {route: list(targets) for route, targets in self.stale_targets.items()},
            "errors": dict(self.errors),
            "generation": self.generation,
            "resolved_at": self.resolved_at,
        }


async def readiness(routes: RouteManager, health: EngineHealth, all_engines: Iterable[str]) -> Readiness:
    """The gateway's readiness now (see the module docstring for the rule)."""
    table = routes.table
    used = {t.engine for route in table.routes.values() for t in route.targets}
    engines = await health.of(used or all_engines, table.generation)
    unresolved = tuple(routes.unresolved)
    status: Status = "ok"
    if unresolved or not any(engines.values()):
        status = "unavailable"
    elif table.degraded or not all(engines.values()):
        status = "degraded"
    return Readiness(
        status, engines, unresolved, dict(table.stale), dict(table.errors), table.generation, table.resolved_at
    )
