"""Rollout records: one MLflow run per rollout in experiment ``llmops-rollouts``, its state in tags.

A rollout (``llmops rollout start``) is written before it touches anything and updated at every
transition, so a controller killed at any point is resumed from here (``llmops rollout resume``):

- ``llmops.kind=rollout``, ``llmops.rollout.route`` (searchable), ``llmops.rollout.status``
  (``running``, ``paused``, ``succeeded``, ``failed``, ``aborted``);
- ``llmops.rollout.state``: the whole state as compact JSON (steps, current step and phase, when the step's window
  started, the candidate and previous pointer versions, the newest look's check results);
- ``llmops.rollout.abort_requested``: set by ``llmops rollout abort`` while a controller runs; the controller
  aborts at its next look.

The run stays open (``RUNNING``) while the rollout is running or paused and is terminated when it ends
(``FINISHED`` for succeeded, ``FAILED`` for failed and aborted). The state's JSON never holds request text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmops.errors import NotFoundError
from llmops.registry import tags
from llmops.registry.backend import Store

ROLLOUTS_EXPERIMENT = "llmops-rollouts"
KIND_ROLLOUT = "rollout"
ROLLOUT_ROUTE = "llmops.rollout.route"
ROLLOUT_STATUS = "llmops.rollout.status"
ROLLOUT_STATE = "llmops.rollout.state"
ROLLOUT_ABORT = "llmops.rollout.abort_requested"
#: statuses a rollout can still move from (a controller may resume it)
OPEN = ("running", "paused")
TERMINAL = ("succeeded", "failed", "aborted")


@dataclass(frozen=True)
class RolloutRecord:
    """A stored rollout: its id (the run id), route, status, state and whether an abort was requested."""

    rollout_id: str
    route: str
    status: str
    state: dict[str, Any]
    abort_requested: str | None
    start_ms: int

    @property
    def is_open(self) -> bool:
        return self.status in OPEN


def _record(run: Any) -> RolloutRecord:
    found = dict(run.data.tags)
    return RolloutRecord(
        rollout_id=str(run.info.run_id),
        route=found.get(ROLLOUT_ROUTE, ""),
        status=found.get(ROLLOUT_STATUS, ""),
        state=json.loads(found.get(ROLLOUT_STATE) or "{}"),
        abort_requested=found.get(ROLLOUT_ABORT) or None,
        start_ms=int(run.info.start_time or 0),
    )


def _state_json(state: Mapping[str, Any]) -> str:
    return json.dumps(state, sort_keys=True, separators=(",", ":"))


class RolloutStore(Store):
    """Create, read, update and list rollout records."""

    def create(self, route: str, state: Mapping[str, Any], *, status: str = "running") -> RolloutRecord:
        experiment = self._backend.ensure_experiment(ROLLOUTS_EXPERIMENT)
        values = {
            tags.KIND: KIND_ROLLOUT,
            ROLLOUT_ROUTE: route,
            ROLLOUT_STATUS: status,
            ROLLOUT_STATE: _state_json(state),
        }
        with self._backend.call(f"cannot record a rollout of route {route}"):
            run = self._client.create_run(experiment, run_name=f"rollout:{route}", tags=values)
        return self.get(str(run.info.run_id))

    def get(self, rollout_id: str) -> RolloutRecord:
        run = self._backend.lookup(f"cannot read rollout {rollout_id}", lambda: self._client.get_run(rollout_id))
        if run is None or dict(run.data.tags).get(tags.KIND) != KIND_ROLLOUT:
            raise NotFoundError(f"no rollout {rollout_id}")
        return _record(run)

    def update(self, rollout_id: str, *, status: str, state: Mapping[str, Any]) -> None:
        """Write the state, then the status (a reader that sees the new status sees its state)."""
        with self._backend.call(f"cannot update rollout {rollout_id}"):
            self._client.set_tag(rollout_id, ROLLOUT_STATE, _state_json(state))
            self._client.set_tag(rollout_id, ROLLOUT_STATUS, status)
            if status in TERMINAL:
                self._client.set_terminated(rollout_id, "FINISHED" if status == "succeeded" else "FAILED")

    def request_abort(self, rollout_id: str, reason: str) -> None:
        with self._backend.call(f"cannot ask rollout {rollout_id} to abort"):
            self._client.set_tag(rollout_id, ROLLOUT_ABORT, reason or "aborted")

    def of_route(self, route: str, limit: int = 20) -> list[RolloutRecord]:
        """The route's rollouts, newest first."""
        experiment = self._backend.experiment_id(ROLLOUTS_EXPERIMENT)
        if experiment is None:
            return []
        filt = f"tags.`{tags.KIND}` = '{KIND_ROLLOUT}' and tags.`{ROLLOUT_ROUTE}` = '{route}'"
        with self._backend.call(f"cannot list the rollouts of route {route}"):
            runs = self._client.search_runs(
                [experiment], filter_string=filt, max_results=limit, order_by=["attributes.start_time DESC"]
            )
        return [_record(r) for r in runs]

    def open_of(self, route: str) -> RolloutRecord | None:
        """The route's running or paused rollout, if any (the newest one)."""
        return next((r for r in self.of_route(route) if r.is_open), None)
