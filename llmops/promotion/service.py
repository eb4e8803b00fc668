"""``promote`` and ``rollback`` of a route's release: gate, lease, reconcile, plan, switch."""

from __future__ import annotations

from dataclasses import replace

from llmops.config.workspace import Workspace
from llmops.errors import LlmopsError, PromotionRefused
from llmops.gitinfo import actor
from llmops.promotion.gate import gated_release, passing_records
from llmops.promotion.moves import Fault, fault_hook, plan, switch
from llmops.promotion.reconcile import lease_key, reconcile
from llmops.registry import Registry, connect
from llmops.registry.audit import AuditRecord
from llmops.registry.lease import DEFAULT_WAIT_S, Lease
from llmops.registry.pointers import RecordedRelease

STAGES = ("production", "canary")


def check_promotable(ws: Workspace, route: str, *, adapter: str | None, prompt: str | None) -> list[str]:
    """The eval record ids that allow promoting (adapter, prompt) on ``route``; PromotionRefused if none."""
    registry = connect(ws)
    return passing_records(registry, route, gated_release(registry, route, adapter, prompt))


def _move(
    registry: Registry, lease: Lease, record: AuditRecord, current: RecordedRelease | None, target: RecordedRelease,
    fault: Fault,
) -> AuditRecord:  # fmt: skip
    return switch(registry, record, plan(registry, record.alias, current, target), record.alias, lease, fault)


def promote(
    ws: Workspace, route: str, *, adapter: str | None, prompt: str | None, stage: str = "production",
    force: bool = False, reason: str = "", wait_s: float = DEFAULT_WAIT_S, fault: Fault = fault_hook,
    actor_name: str | None = None,
) -> AuditRecord:  # fmt: skip
    """Move ``route``'s ``stage`` to the release (adapter, prompt) once its eval records allow it.

    Safe to call concurrently (threads, processes, machines): moves of one route take its lease in turn,
    waiting up to ``wait_s`` (then LeaseHeld names the holder). ``actor_name`` is who the audit record names
    (default: :func:`llmops.gitinfo.actor`; a rollout promotes in the name of who started it).
    """
    if stage not in STAGES:
        raise LlmopsError(f"--to must be one of {', '.join(STAGES)}, not {stage!r}")
    if force and not reason.strip():
        raise LlmopsError("--force needs --reason TEXT: forced promotions are audited with their reason")
    registry = connect(ws)
    release = gated_release(registry, route, adapter, prompt)
    eval_ids: list[str] = []
    try:
        eval_ids = passing_records(registry, route, release)
    except PromotionRefused:
        if not force:
            raise
    who = actor_name or actor()
    holder = f"{who} (promote {route}@{stage})"
    with registry.leases.held(lease_key("release", route), holder, wait_s=wait_s) as lease:
        reconcile(registry, "release", route)
        current = registry.pointers.at_stage(route, stage)
        target = registry.pointers.record(route, release.release, eval_ids)
        record = AuditRecord(
            kind="release", object=route, alias=stage,
            from_version=str(current.version) if current else None, to_version=str(target.version),
            actor=who, reason=reason, eval_records=tuple(eval_ids), forced=force and not eval_ids,
            detail=target.release.label(),
        )  # fmt: skip
        if current is not None and current.version == target.version:
            return replace(record, outcome="unchanged")
        return _move(registry, lease, record, current, target, fault)


def rollback(
    ws: Workspace, route: str, *, stage: str = "production", reason: str = "", wait_s: float = DEFAULT_WAIT_S,
    fault: Fault = fault_hook,
) -> AuditRecord:  # fmt: skip
    """Restore the release that the last completed move of ``route@stage`` replaced."""
    registry = connect(ws)
    with registry.leases.held(lease_key("release", route), f"{actor()} (rollback {route}@{stage})",
                              wait_s=wait_s) as lease:  # fmt: skip
        reconcile(registry, "release", route)
        current = registry.pointers.at_stage(route, stage)
        if current is None:
            raise LlmopsError(f"route {route} has no {stage} release to roll back")
        moves = [m for m in registry.pointers.history(route, stage) if m.record.outcome == "moved"]
        previous = next((m.from_version for m in moves if m.to_version == current.version), None)
        if previous is None:
            raise LlmopsError(f"no earlier {stage} release of {route} in the audit log to roll back to")
        target = registry.pointers.get(route, previous)
        record = AuditRecord(
            kind="release", object=route, alias=stage, from_version=str(current.version),
            to_version=str(target.version), actor=actor(), reason=reason or "rollback", outcome="rolled-back",
            detail=target.release.label(),
        )  # fmt: skip
        return _move(registry, lease, record, current, target, fault)


def restore_stage(
    ws: Workspace, route: str, stage: str, version: int, *, reason: str, actor_name: str | None = None,
    wait_s: float = DEFAULT_WAIT_S, fault: Fault = fault_hook,
) -> AuditRecord:  # fmt: skip
    """Point ``route@stage`` back at its recorded release v``version`` (no eval gate: the release was there
    before, e.g. the canary an aborted rollout replaced); audited as ``rolled-back``, "unchanged" when already there."""
    registry = connect(ws)
    who = actor_name or actor()
    with registry.leases.held(lease_key("release", route), f"{who} (restore {route}@{stage})",
                              wait_s=wait_s) as lease:  # fmt: skip
        reconcile(registry, "release", route)
        current = registry.pointers.at_stage(route, stage)
        target = registry.pointers.get(route, version)
        record = AuditRecord(
            kind="release", object=route, alias=stage, from_version=str(current.version) if current else None,
            to_version=str(version), actor=who, reason=reason, outcome="rolled-back", detail=target.release.label(),
        )  # fmt: skip
        if current is not None and current.version == version:
            return replace(record, outcome="unchanged")
        return _move(registry, lease, record, current, target, fault)
