"""Route state from the registry, as every gateway replica sees it (off the hot path).

Every ``refresh.state_interval_s`` (default 1 s) and at the start of every full refresh, the route
manager (:mod:`llmops.gateway.routes`) reads each route's
:class:`~llmops.registry.routestate.RouteState` with :func:`read_states` (blocking: one registry round
trip per route, run in a worker thread) and hands each read to a :class:`StateTracker`, which decides
what it means for the route table:

* **weights**: a weights version this replica has not applied yet replaces the weights in force (the
  file's, or earlier registry weights), when it names exactly the route's targets in this replica's
  gateway file. Weights that name other targets (a fleet midway through a config change) are ignored:
  a warning is logged once per version and ``GET /admin/routes`` shows it under ``state``; the replica
  keeps the weights it serves (``/readyz`` is unchanged: nothing failed to resolve).
* **stage pointers**: a stage whose pointer version differs from what the last full refresh read
  asks for a full refresh now, so a promotion serves within about one state interval.
* **failures**: a route whose read fails keeps its last state (serving never changes on a registry
  fault); the manager counts it (``llmops_gateway_resolve_failures_total{kind="state"}``) and the
  tracker logs the first failure of a streak and the recovery.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from llmops.redact import redact
from llmops.registry.routestate import RouteState

log = logging.getLogger(__name__)


class StateSource(Protocol):
    def route_state(self, route: str) -> RouteState | None: ...


def read_states(source: StateSource, routes: Iterable[str]) -> dict[str, RouteState | None | Exception]:
    """Blocking: each route's state, None (no state recorded) or the exception its read raised."""
    out: dict[str, RouteState | None | Exception] = {}
    for route in routes:
        try:
            out[route] = source.route_state(route)
        except Exception as exc:  # noqa: BLE001 - one failed read keeps that route's last state; reported
            out[route] = exc
    return out


class StateTracker:
    """The last state read per route, the weights versions applied, and the pointer versions a full refresh saw."""

    def __init__(self) -> None:
        self.last: dict[str, RouteState] = {}
        self.ignored: dict[str, str] = {}  # route -> why its registry weights are not applied
        self.failing: dict[str, str] = {}  # route -> why its last state read failed
        self._applied: dict[str, int] = {}
        self._seen: dict[str, dict[str, int]] = {}

    def failed(self, route: str, exc: BaseException) -> None:
        message = redact(str(exc))
        if route not in self.failing:
            log.warning("route %s: cannot read its state; keeping the last one: %s", route, message)
        self.failing[route] = message

    def weights(self, route: str, targets: Sequence[str], state: RouteState) -> dict[str, int] | None:
        """The weights to apply from ``state`` (a version not applied yet, naming exactly ``targets``), else None."""
        self.last[route] = state
        if self.failing.pop(route, None) is not None:
            log.info("route %s: its state reads again", route)
        if state.weights is None or self._applied.get(route) == state.weights_version:
            return None
        self._applied[route] = state.weights_version
        if set(state.weights) != set(targets):
            why = (
                f"registry weights v{state.weights_version} name targets {sorted(state.weights)}, "
                f"this gateway serves {sorted(targets)}: ignored"
            )
            log.warning("route %s: %s", route, why)
            self.ignored[route] = why
            return None
        self.ignored.pop(route, None)
        return dict(state.weights)

    def saw(self, route: str, state: RouteState) -> None:
        """A full refresh resolves against these stage pointers."""
        self._seen[route] = dict(state.stages)

    def moved(self, route: str, state: RouteState) -> bool:
        """True when a stage pointer differs from what the last full refresh saw."""
        return self._seen.get(route, {}) != dict(state.stages)

    def describe(self, route: str) -> dict[str, Any]:
        """What ``GET /admin/routes`` shows under ``state``."""
        last = self.last.get(route)
        return {
            "weights_version": last.weights_version if last else 0,
            "weights_by": last.actor if last and last.weights is not None else None,
            "rollout": last.rollout if last else None,
            "stages": dict(last.stages) if last else {},
            "ignored": self.ignored.get(route),
            "read_error": self.failing.get(route),
        }
