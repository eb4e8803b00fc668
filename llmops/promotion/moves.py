"""Alias moves of one promotion: planned, written ahead to the audit log, applied in order, undone safely.

Order: a ``pending`` audit record holding the plan (every move, old → new, as JSON in its ``plan``
field); the adapter alias; the prompt alias; the route's release pointer (the commit point); the final
audit record. Each write is preceded by a check that the lease is still ours. A failure midway undoes
what moved — but only an alias that still holds the value this promotion set (another writer's value
is left alone) — and appends ``restored``. A kill leaves the ``pending`` record for
:mod:`llmops.promotion.reconcile` to settle.

Test-only fault hook: ``LLMOPS_FAULT=promote-STEP`` makes the process exit at once (as a kill would)
at STEP: ``after-pending``, ``after-move-N`` (N = 1-based index in the plan: adapter, prompt, pointer;
only moves that change something fire), ``after-pointer`` and ``before-audit``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace

from llmops.errors import LlmopsError, RegistryError
from llmops.registry import Registry
from llmops.registry.audit import AuditRecord
from llmops.registry.lease import Lease
from llmops.registry.pointers import RecordedRelease

Fault = Callable[[str], None]


def fault_hook(step: str) -> None:
    """Exit abruptly at ``step`` when ``LLMOPS_FAULT=promote-STEP`` (tests of crash safety)."""
    if os.environ.get("LLMOPS_FAULT") == f"promote-{step}":
        os._exit(70)


@dataclass(frozen=True)
class Move:
    kind: str  # adapter | prompt | release
    name: str  # adapter or prompt name, or the route
    old: int | None
    new: int | None


def encode_plan(outcome: str, moves: list[Move]) -> str:
    """The ``plan`` of a pending record: the outcome it will settle with and every planned move."""
    return json.dumps({"outcome": outcome, "moves": [[m.kind, m.name, m.old, m.new] for m in moves]})


def decode_plan(text: str) -> tuple[str, list[Move]] | None:
    """``(outcome, moves)`` from :func:`encode_plan`; None for a record without a plan (older llmops)."""
    if not text:
        return None
    data = json.loads(text)
    return str(data["outcome"]), [Move(str(k), str(n), o, v) for k, n, o, v in data["moves"]]


def read_alias(registry: Registry, move: Move, stage: str) -> int | None:
    """The version ``move``'s object points at ``stage`` now."""
    if move.kind == "release":
        current = registry.pointers.at_stage(move.name, stage)
        return None if current is None else current.version
    store = registry.adapters if move.kind == "adapter" else registry.prompts
    return store.alias_version(move.name, stage)


def write_alias(registry: Registry, move: Move, stage: str, version: int | None) -> None:
    """Point ``move``'s object at ``version`` at ``stage`` (None removes the alias)."""
    if move.kind == "release":
        registry.pointers.set_stage(move.name, stage, version)
        return
    store = registry.adapters if move.kind == "adapter" else registry.prompts
    if version is None:
        store.delete_alias(move.name, stage)
    else:
        store.set_alias(move.name, stage, version)


def plan(registry: Registry, stage: str, current: RecordedRelease | None, target: RecordedRelease) -> list[Move]:
    """The moves that make ``stage`` serve ``target``: its adapter alias, its prompt alias, the pointer."""
    moves = []
    for kind, ref in (("adapter", target.release.adapter), ("prompt", target.release.prompt)):
        if ref is not None and ref.version is not None:
            move = Move(kind, ref.name, None, ref.version)
            moves.append(replace(move, old=read_alias(registry, move, stage)))
    moves.append(Move("release", target.route, current.version if current else None, target.version))
    return moves


class Mover:
    """Applies moves in order (checking the lease before each) and undoes the applied ones that are still ours."""

    def __init__(self, registry: Registry, stage: str, lease: Lease | None, fault: Fault) -> None:
        self.registry = registry
        self.stage = stage
        self.lease = lease
        self.fault = fault
        self.done: list[Move] = []

    def apply(self, moves: list[Move]) -> None:
        for i, move in enumerate(moves, start=1):
            if move.old == move.new:
                continue
            if self.lease is not None:
                self.lease.check()
            write_alias(self.registry, move, self.stage, move.new)
            self.done.append(move)
            self.fault(f"after-move-{i}")
            if move.kind == "release":
                self.fault("after-pointer")

    def undo(self) -> list[str]:
        """Put back what moved, newest first; returns the aliases left alone because another writer moved them."""
        left = []
        for move in reversed(self.done):
            if read_alias(self.registry, move, self.stage) == move.new:
                write_alias(self.registry, move, self.stage, move.old)
            else:
                left.append(f"{move.kind} {move.name}@{self.stage}")
        self.done.clear()
        return left


def switch(
    registry: Registry, record: AuditRecord, moves: list[Move], stage: str, lease: Lease | None, fault: Fault
) -> AuditRecord:
    """Write ahead, apply ``moves``, audit the outcome — all in the protected section (module docstring)."""
    registry.audit.append(replace(record, outcome="pending", plan=encode_plan(record.outcome, moves)))
    fault("after-pending")
    mover = Mover(registry, stage, lease, fault)
    try:
        mover.apply(moves)
        fault("before-audit")
        return registry.audit.append(record)
    except Exception as exc:  # noqa: BLE001 - any failure midway is undone, audited, then re-raised
        what = f"{record.kind} {record.object}@{record.alias}"
        try:
            left = mover.undo()
            note = f"; left alone (moved by another writer): {', '.join(left)}" if left else ""
            registry.audit.append(replace(record, outcome="restored", detail=f"{record.detail}; {exc}{note}"))
        except LlmopsError as undo_exc:
            raise RegistryError(
                f"move of {what} failed ({exc}) and could not be undone ({undo_exc}); its pending audit record "
                "is settled by the next promote/rollback of it or by `llmops doctor --repair`",
                uri=registry.uri,
            ) from exc
        if isinstance(exc, LlmopsError):
            raise
        raise RegistryError(f"move of {what} failed and was undone: {exc}", uri=registry.uri) from exc
