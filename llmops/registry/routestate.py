"""Route state in the registry: the stage pointers, the weights in force and the rollout that owns them.

Every gateway replica reads a route's :class:`RouteState` every ``refresh.state_interval_s`` (one
``get_registered_model`` round trip); ``PUT /admin/routes/NAME``, ``llmops route weights`` and the
rollout controller write it. It lives on the registered model ``ROUTE.release`` (created when missing,
``llmops.kind=release``; :func:`llmops.registry.pointers.ensure_pointer_model`), beside the release
pointers it complements:

* the model's **aliases** are the stage pointers (``production``, ``canary``, … → pointer version);
* tag ``llmops.route.weights`` holds the weights, as JSON::

      {"weights": {"stable": 90, "canary": 10}, "version": 7, "actor": "ops", "time": 1767225600.0}

  ``weights`` maps every target of the route to an integer >= 0 (one positive); ``version`` counts the
  writes (1 for the first; 0 in :class:`RouteState` means never written: the gateway file's weights
  serve); ``actor`` and ``time`` (epoch seconds) name the last writer;
* tag ``llmops.route.rollout`` holds the id of the running rollout that owns the weights ("": none).
  While one does, a write that does not name it is refused (:class:`~llmops.errors.RolloutActive`)
  unless forced.

Every write that changes the weights appends an audit record (kind ``weights``, object = route,
alias ``weights``, from/to = weights versions, detail = JSON ``{"weights", "previous", "rollout",
"evidence"}``); a write of the weights in force changes nothing and records nothing. The tag is written
first, then its record. Concurrent writers are not serialised here (tags have no compare-and-set):
the rollout controller holds the route's lease, and a manual write during a rollout needs ``force``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmops.errors import InvalidRequestError, RegistryError, RolloutActive
from llmops.registry import tags
from llmops.registry.audit import AuditRecord, AuditStore
from llmops.registry.backend import Backend, Store
from llmops.registry.pointers import ensure_pointer_model, not_pointer, pointer_model

#: MLflow's limit on a run tag value; an audit record's evidence is cut to fit (a write never fails on it)
_MAX_DETAIL = 8000


@dataclass(frozen=True)
class RouteState:
    """A route's state as one registry read saw it."""

    route: str
    stages: Mapping[str, int]  # stage alias -> release pointer version
    weights: Mapping[str, int] | None  # target -> weight; None: never set (the file's weights serve)
    weights_version: int  # increments on every weights write (0: never written)
    rollout: str | None  # id of the running rollout that owns the weights, else None
    actor: str = ""  # who wrote the weights last
    written_at: float | None = None  # when (epoch seconds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "stages": dict(self.stages),
            "weights": dict(self.weights) if self.weights is not None else None,
            "weights_version": self.weights_version,
            "rollout": self.rollout,
            "actor": self.actor,
            "written_at": self.written_at,
        }


def check_weights(weights: Mapping[str, int]) -> dict[str, int]:
    """``weights`` as a plain dict; InvalidRequestError unless every one is an integer >= 0 and one is positive."""
    if not weights:
        raise InvalidRequestError("weights must name at least one target", param="weights")
    if any(not isinstance(w, int) or isinstance(w, bool) or w < 0 for w in weights.values()):
        raise InvalidRequestError("weights must be integers >= 0", param="weights")
    if sum(weights.values()) <= 0:
        raise InvalidRequestError("at least one weight must be positive", param="weights")
    return {str(k): int(v) for k, v in weights.items()}


def _state(route: str, model: Any) -> RouteState:
    found = dict(model.tags or {})
    if found.get(tags.KIND) != tags.KIND_RELEASE:
        raise not_pointer(route, found.get(tags.KIND))
    weights, version, actor, written = None, 0, "", None
    raw = found.get(tags.ROUTE_WEIGHTS)
    if raw:
        try:
            data = json.loads(raw)
            weights = check_weights(data["weights"])
            version, actor, written = int(data["version"]), str(data.get("actor", "")), data.get("time")
        except (ValueError, KeyError, TypeError, InvalidRequestError) as exc:
            raise RegistryError(f"tag {tags.ROUTE_WEIGHTS} of {pointer_model(route)} is malformed: {exc}") from exc
    stages = {str(alias): int(v) for alias, v in (model.aliases or {}).items()}
    rollout = found.get(tags.ROUTE_ROLLOUT) or None
    return RouteState(route, stages, weights, version, rollout, actor, float(written) if written else None)


class RouteStateStore(Store):
    """Read and write the state of routes (see the module docstring for the format)."""

    def __init__(self, backend: Backend, audit: AuditStore) -> None:
        super().__init__(backend)
        self._audit = audit

    def read(self, route: str) -> RouteState | None:
        """``route``'s state in ONE registry round trip; None when it has no pointer model yet.

        Any failure to find out raises RegistryError (never "no state")."""
        name = pointer_model(route)
        model = self._backend.lookup(
            f"cannot read the state of route {route}", lambda: self._client.get_registered_model(name)
        )
        return None if model is None else _state(route, model)

    def set_weights(
        self,
        route: str,
        weights: Mapping[str, int],
        *,
        actor: str,
        reason: str = "",
        force: bool = False,
        rollout: str | None = None,
        evidence: str = "",
    ) -> AuditRecord | None:
        """Write ``route``'s weights and audit it; None when they are already in force (nothing written).

        RolloutActive when a rollout owns the route and ``rollout`` is not its id, unless ``force``."""
        new = check_weights(weights)
        ensure_pointer_model(self._backend, route)
        state = self.read(route)
        if state is None:  # deleted between the two calls
            raise RegistryError(f"the release pointers of route {route} vanished while writing its weights")
        if state.rollout is not None and rollout != state.rollout and not force:
            raise RolloutActive(route, state.rollout)
        if state.weights is not None and dict(state.weights) == new:
            return None
        version = state.weights_version + 1
        value = json.dumps({"weights": new, "version": version, "actor": actor, "time": time.time()}, sort_keys=True)
        with self._backend.call(f"cannot write the weights of route {route}"):
            self._client.set_registered_model_tag(pointer_model(route), tags.ROUTE_WEIGHTS, value)
        previous = dict(state.weights) if state.weights is not None else None
        detail = {"weights": new, "previous": previous, "rollout": state.rollout, "evidence": evidence}
        text = json.dumps(detail, sort_keys=True)
        keep = len(evidence)
        while len(text) > _MAX_DETAIL and keep > 0:  # JSON escapes may lengthen it: cut until it fits
            keep = max(keep - (len(text) - _MAX_DETAIL) - 32, 0)
            detail["evidence"] = evidence[:keep] + "...(truncated)"
            text = json.dumps(detail, sort_keys=True)
        record = AuditRecord(
            kind="weights",
            object=route,
            alias="weights",
            from_version=str(state.weights_version) if state.weights_version else None,
            to_version=str(version),
            actor=actor,
            reason=reason,
            forced=force,
            detail=text,
        )
        return self._audit.append(record)

    def set_rollout(self, route: str, rollout_id: str | None) -> None:
        """Claim (an id) or release (None) ownership of ``route``'s weights for a rollout."""
        ensure_pointer_model(self._backend, route)
        with self._backend.call(f"cannot record the rollout of route {route}"):
            self._client.set_registered_model_tag(pointer_model(route), tags.ROUTE_ROLLOUT, rollout_id or "")
