"""The rollout controller: steps a canary through its weights on evidence, then promotes or aborts.

One controller per route at a time: it holds the route's rollout lease (``rollout.ROUTE``, see
:mod:`llmops.registry.lease`), renewed at every look; a second ``start`` or ``resume`` is refused with
LeaseHeld naming the holder, and a controller that dies stops renewing, so its lease expires (at once for
a process of this host that no longer exists). The gateways never depend on the controller: they serve
the route state in the registry (pointers, weights), which stays as the controller last wrote it.

Every transition is written to the rollout's record before its work starts (:mod:`llmops.rollout.state`),
so ``resume`` continues exactly where a killed controller stopped: a step is never skipped and its weights
are never written twice (an unchanged weights write is no write and no audit record). The window of a
step starts when its weights are written; a resumed rollout keeps that window, a *paused* one (inconclusive,
or a replica unreachable) starts the step's window again on resume.

A registry that does not answer is retried with backoff (doubling up to 20 s); the lease (60 s) outlives
short outages; after a longer one the controller stops with LeaseLost and ``resume`` continues.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmops.config.rollout import RolloutFile, RouteRollout
from llmops.config.workspace import Workspace
from llmops.errors import RegistryError
from llmops.events import SILENT, Reporter
from llmops.monitor.embeddings import Embedder
from llmops.promotion import promote, restore_stage
from llmops.registry import Registry
from llmops.registry.audit import AuditRecord
from llmops.registry.lease import Lease
from llmops.rollout.checks import ArmData, CheckResult, analyse, step_verdict
from llmops.rollout.replicas import unreachable
from llmops.rollout.samples import ArmReader, ArmSelector
from llmops.rollout.state import RolloutState

LEASE_TTL_S = 60.0
#: a replica must stay unreachable this long before the rollout pauses (one lost probe under load is not a fault)
REPLICA_GRACE_S = 15.0
BACKOFF_MAX_S = 20.0
EVIDENCE_CHARS = 6000
#: exit codes of ``llmops rollout start|resume`` by final status
EXIT_CODES = {"succeeded": 0, "failed": 1, "aborted": 1, "paused": 3}


def lease_key(route: str) -> str:
    return f"rollout.{route}"


class Observer(Protocol):
    """Told about every look and transition (the CLI renders it; the exporter turns it into gauges)."""

    def update(self, rollout_id: str, status: str, state: RolloutState) -> None: ...


@dataclass(frozen=True)
class RolloutOutcome:
    rollout_id: str
    status: str
    state: RolloutState

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.status, 1)


def evidence(state: RolloutState, verdict: str, rollout_id: str) -> str:
    """The compact JSON an audit record carries: the rollout, the step, its weights, and every check's numbers."""
    data = {"rollout": rollout_id, "step": state.step + 1, "weight": state.current.weight, "verdict": verdict, "looks": state.looks,
            "checks": state.results}  # fmt: skip
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= EVIDENCE_CHARS else text[: EVIDENCE_CHARS - 1] + "…"


@dataclass
class Controller:
    """Drives one rollout (``run``) while holding its lease; see the module docstring."""

    ws: Workspace
    registry: Registry
    spec: RolloutFile
    route_spec: RouteRollout
    rollout_id: str
    state: RolloutState
    lease: Lease
    reporter: Reporter = SILENT
    observer: Observer | None = None
    embedder: Callable[[], Embedder] | None = None
    sleep: Callable[[float], None] = time.sleep
    status: str = "running"
    _reader: ArmReader | None = None
    _embedder: Embedder | None = None
    _down_since: dict[str, float] = field(default_factory=dict)  # replica URL -> first failed probe (monotonic)

    @property
    def route(self) -> str:
        return self.state.route

    # -- persistence -----------------------------------------------------------------------------
    def save(self) -> None:
        self.registry.rollouts.update(self.rollout_id, status=self.status, state=self.state.to_dict())
        if self.observer is not None:
            self.observer.update(self.rollout_id, self.status, self.state)

    def audit(self, outcome: str, reason: str, detail: str = "") -> None:
        self.registry.audit.append(
            AuditRecord(
                kind="rollout", object=self.route, alias="canary", from_version=str(self.state.stable_version),
                to_version=str(self.state.candidate) if self.state.candidate else None, actor=self.state.actor,
                reason=reason, outcome=outcome, detail=detail or f"rollout {self.rollout_id}: {self.state.label}",
            )
        )  # fmt: skip

    # -- the loop --------------------------------------------------------------------------------
    def run(self) -> RolloutOutcome:
        """Advance until the rollout succeeds, fails, is aborted or pauses; registry faults are retried."""
        backoff = 1.0
        while self.status == "running":
            try:
                self.lease.renew()  # LeaseLost (not a RegistryError) ends the run: `resume` continues
                self.advance()
                backoff = 1.0
            except RegistryError as exc:
                self.reporter.note(f"registry unavailable ({exc}); retrying in {backoff:.0f} s")
                self.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
        return RolloutOutcome(self.rollout_id, self.status, self.state)

    def advance(self) -> None:
        """Do the current phase's work once (idempotent) and move to the next phase."""
        phase = self.state.phase
        if phase.startswith("ending:"):
            self._finish(phase.removeprefix("ending:"))
            return
        requested = self.registry.rollouts.get(self.rollout_id).abort_requested
        if requested is not None:
            self.end("aborted", f"aborted: {requested}")
            return
        if phase == "canary":
            self._point_canary()
        elif phase == "weights":
            self._write_weights()
        elif phase == "analysing":
            self._look()
        elif phase == "promoting":
            self._promote()

    def _point_canary(self) -> None:
        promote(self.ws, self.route, adapter=self.state.adapter, prompt=self.state.prompt, stage="canary",
                **self._gate())  # fmt: skip
        found = self.registry.pointers.at_stage(self.route, "canary")
        self.state.candidate = found.version if found else None
        self.state.phase = "weights"
        self.save()
        self.reporter.note(f"canary of {self.route} now serves {self.state.label}")

    def _gate(self) -> dict[str, Any]:
        """How this rollout's promotions pass the eval gate: by its records, or forced with the start's reason."""
        forced = self.state.forced
        reason = f"rollout {self.rollout_id}" + (f" (forced: {forced})" if forced else "")
        return {"force": bool(forced), "reason": reason, "actor_name": self.state.actor}

    def _write_weights(self) -> None:
        step = self.state.current
        self.registry.routes.set_weights(
            self.route, self.state.weights(), actor=self.state.actor, rollout=self.rollout_id,
            reason=f"rollout {self.rollout_id} step {self.state.step + 1}/{len(self.state.steps)}",
        )  # fmt: skip
        now = time.time()
        self.state.phase = "analysing"
        self.state.step_started_at = now
        self.state.step_starts = [*self.state.step_starts[: self.state.step], now]
        self.state.looks = 0
        self.state.results = []
        self.save()
        self.reporter.note(f"step {self.state.step + 1}/{len(self.state.steps)}: canary at {step.weight}%")

    def _arms(self) -> tuple[ArmData, ArmData]:
        if self._reader is None:
            self._reader = ArmReader(self.ws.home, self.spec.request_log, self.spec.feedback_log)
        s = self.state
        canary_sel = ArmSelector(s.canary_target, s.adapter, s.prompt)  # exact refs read as the log's labels
        stable_sel = ArmSelector(s.stable_target, s.stable_adapter, s.stable_prompt)
        canary, stable = self._reader.read(self.route, s.step_started_at, canary=canary_sel, stable=stable_sel)
        if s.current.weight >= 100 and len(s.step_starts) >= 2:
            # no stable traffic at 100 %: compare with the stable arm of the previous step's window
            _, stable = self._reader.read(self.route, s.step_starts[-2], canary=canary_sel, stable=stable_sel)
        return canary, stable

    def _look(self) -> None:
        now = time.monotonic()
        down = set(unreachable(self.spec.replicas))
        self._down_since = {url: self._down_since.get(url, now) for url in down}
        lost = sorted(url for url, since in self._down_since.items() if now - since >= REPLICA_GRACE_S)
        if lost:
            self.pause(f"gateway replica(s) unreachable for {REPLICA_GRACE_S:.0f} s: {', '.join(lost)}")
            return
        canary, stable = self._arms()
        if self.route_spec.checks.output_drift is not None and self._embedder is None and self.embedder is not None:
            self._embedder = self.embedder()  # loaded once, at the first look that needs it
        step = self.state.current
        results = analyse(self.route_spec.checks, canary, stable, confidence=self.route_spec.confidence,
                          min_samples=step.min_samples, embedder=self._embedder)  # fmt: skip
        elapsed = time.time() - self.state.step_started_at
        verdict = step_verdict(results, elapsed_s=elapsed, step=step.as_spec(), canary_n=canary.requests,
                               stable_n=stable.requests)  # fmt: skip
        self.state.looks += 1
        self.state.results = [r.to_dict() for r in results]
        if verdict is None:
            self.save()
            self.sleep(self.spec.interval_s)
            return
        self.state.history.append(
            {"step": self.state.step + 1, "weight": step.weight, "verdict": verdict, "at": time.time(),
             "canary_n": canary.requests, "stable_n": stable.requests, "looks": self.state.looks,
             "failed": [r.check for r in results if r.verdict == "fail"]}
        )  # fmt: skip
        if verdict == "fail":
            failed = ", ".join(_brief(r) for r in results if r.verdict == "fail")
            self.end("failed", f"step {self.state.step + 1} ({step.weight}%) failed: {failed}")
        elif verdict == "inconclusive":
            self.pause(
                f"step {self.state.step + 1}: minimum sample ({step.min_samples} per arm) not reached in "
                f"{step.max_duration_s:.0f} s (canary {canary.requests}, stable {stable.requests})"
            )
        elif self.state.is_last_step:
            self.state.phase = "promoting"
            self.save()
        else:
            self.reporter.note(f"step {self.state.step + 1} passed ({canary.requests} canary requests)")
            self.state.step += 1
            self.state.phase = "weights"
            self.save()

    def _promote(self) -> None:
        record = promote(self.ws, self.route, adapter=self.state.adapter, prompt=self.state.prompt,
                         stage="production", **self._gate())  # fmt: skip
        self.reporter.note(f"promoted {self.state.label} to production ({record.outcome})")
        self.state.phase = "ending:succeeded"
        self.state.reason = "all steps passed"
        self.save()
        self._finish("succeeded")

    # -- endings ---------------------------------------------------------------------------------
    def pause(self, reason: str) -> None:
        self.status = "paused"
        self.state.reason = reason
        self.save()
        self.audit("paused", reason, evidence(self.state, "inconclusive", self.rollout_id))
        self.reporter.note(f"paused: {reason}")

    def end(self, status: str, reason: str) -> None:
        """Fail or abort: recorded first (``ending:STATUS``), then done by :meth:`_finish` (resumable)."""
        self.state.phase = f"ending:{status}"
        self.state.reason = reason
        self.save()
        self._finish(status)

    def _finish(self, status: str) -> None:
        s = self.state
        stable_only = s.weights(canary=0)
        verdict = "pass" if status == "succeeded" else "fail"
        self.registry.routes.set_weights(self.route, stable_only, actor=s.actor, rollout=self.rollout_id,
                                         reason=f"rollout {self.rollout_id} {status}",
                                         evidence=evidence(s, verdict, self.rollout_id))  # fmt: skip
        if status != "succeeded":
            back = s.previous_canary if s.previous_canary is not None else s.stable_version
            restore_stage(self.ws, self.route, "canary", back, reason=f"rollout {self.rollout_id} {status}",
                          actor_name=s.actor)  # fmt: skip
        self.registry.routes.set_rollout(self.route, None)
        self.audit(status, s.reason, evidence(s, verdict, self.rollout_id))
        s.phase = "done"
        self.status = status
        self.save()
        self.reporter.note(f"rollout {status}: {s.reason}")


def _brief(result: CheckResult) -> str:
    p = f"p={result.p_value:.2g}" if result.p_value is not None else "p=?"
    return f"{result.check} (canary {_num(result.canary)} vs stable {_num(result.stable)}, {p})"


def _num(value: Any) -> str:
    return "?" if value is None else f"{value:.4g}"
