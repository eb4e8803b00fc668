"""Settle moves that died midway: "pending" audit records that no outcome follows.

A pending release record (route, stage, from → to, plan) is settled under the route's lease:

* the pointer is at ``to``: the move committed (the kill came after the pointer moved, before the final
  audit write) → append its intended outcome (``moved`` / ``rolled-back``), reason saying "reconciled";
* otherwise it did not commit → every alias the plan moved that still holds the value the plan set is
  put back to what the pointer's current release names (or to its old value when the stage has no
  release, which removes an alias that did not exist); an alias holding anything else is not ours and
  is left alone → append ``restored``.

A pending prompt-alias record (``llmops prompts promote``) is settled under the prompt's lease:
``moved`` when the alias holds ``to``, else ``restored``. Runs at the start of every promote and
rollback (for that route) and from ``llmops doctor --repair`` (everything).
"""

from __future__ import annotations

import time
from dataclasses import replace

from llmops.gitinfo import actor
from llmops.promotion.moves import Move, decode_plan, read_alias, write_alias
from llmops.registry import Registry
from llmops.registry.audit import AuditRecord, unsettled
from llmops.registry.pointers import RecordedRelease

#: how far back the audit log is searched for unsettled records
LOOKBACK = 500


def lease_key(kind: str, name: str) -> str:
    """The lease that guards moves of ``kind`` (release → the route, prompt → the prompt) named ``name``."""
    return f"route.{name}" if kind == "release" else f"{kind}.{name}"


def pending(registry: Registry, object_name: str | None = None, kind: str | None = None) -> list[AuditRecord]:
    """Unsettled pending records, newest first (optionally of one object and kind)."""
    found = unsettled(registry.audit.records(object_name, limit=LOOKBACK))
    return [r for r in found if kind is None or r.kind == kind]


def _settle(registry: Registry, record: AuditRecord, outcome: str, why: str) -> AuditRecord:
    now = max(int(time.time() * 1000), record.timestamp_ms)
    reason = f"{record.reason}; reconciled: {why}" if record.reason else f"reconciled: {why}"
    return registry.audit.append(replace(record, outcome=outcome, reason=reason, plan="", actor=actor(),
                                         timestamp_ms=now, record_id=None))  # fmt: skip


def _legacy_moves(registry: Registry, record: AuditRecord) -> list[Move]:
    """Moves of a pending record written without a plan: the target release's aliases, old values unknown."""
    if not record.to_version:
        return []
    target = registry.pointers.get(record.object, int(record.to_version))
    refs = (("adapter", target.release.adapter), ("prompt", target.release.prompt))
    return [Move(kind, ref.name, None, ref.version) for kind, ref in refs if ref is not None and ref.version]


def _wanted(current: RecordedRelease | None, move: Move) -> int | None:
    """What ``move``'s alias should hold so it mirrors the stage's current release."""
    if current is None:
        return move.old
    ref = current.release.adapter if move.kind == "adapter" else current.release.prompt
    return ref.version if ref is not None and ref.name == move.name else move.old


def _release(registry: Registry, record: AuditRecord) -> AuditRecord:
    route, stage = record.object, record.alias
    decoded = decode_plan(record.plan)
    intent, moves = decoded if decoded else ("moved", _legacy_moves(registry, record))
    current = registry.pointers.at_stage(route, stage)
    if current is not None and record.to_version and current.version == int(record.to_version):
        return _settle(registry, record, intent, f"the pointer had moved to v{current.version}")
    put_back, left = [], []
    for move in moves:
        if move.kind == "release":
            continue
        have, want = read_alias(registry, move, stage), _wanted(current, move)
        if have == want:
            continue
        if have == move.new:  # still the value this move set: ours to put back
            write_alias(registry, move, stage, want)
            put_back.append(f"{move.name}@{stage} v{have} → {'v' + str(want) if want else 'none'}")
        else:
            left.append(f"{move.name}@{stage} (v{have})")
    shown = "; ".join(filter(None, [", ".join(put_back), f"not ours, left: {', '.join(left)}" if left else ""]))
    return _settle(registry, record, "restored", f"the pointer did not move; {shown or 'no alias to restore'}")


def _prompt(registry: Registry, record: AuditRecord) -> AuditRecord:
    have = registry.prompts.alias_version(record.object, record.alias)
    if record.to_version and have == int(record.to_version):
        return _settle(registry, record, "moved", f"the alias had moved to v{have}")
    return _settle(registry, record, "restored", "the alias did not move")


def reconcile(registry: Registry, kind: str, name: str) -> list[AuditRecord]:
    """Settle the unsettled pending records of ``kind`` ``name``; the caller holds its lease."""
    out = []
    for record in reversed(pending(registry, name, kind)):  # oldest first
        out.append(_release(registry, record) if kind == "release" else _prompt(registry, record))
    return out


def repair(registry: Registry, *, wait_s: float = 30.0) -> list[AuditRecord]:
    """Settle every unsettled pending record in the registry, each object under its lease."""
    objects = sorted({(r.kind, r.object) for r in pending(registry) if r.kind in ("release", "prompt")})
    out: list[AuditRecord] = []
    for kind, name in objects:
        with registry.leases.held(lease_key(kind, name), f"{actor()} (doctor --repair)", wait_s=wait_s):
            out += reconcile(registry, kind, name)
    return out
