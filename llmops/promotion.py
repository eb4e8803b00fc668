"""Gated promotion and rollback of a route's release.

``promote`` checks that a passing eval record exists for exactly the release (adapter version +
prompt version) on every suite in ``evals/`` that targets the route with ``required: true``; then it
moves, in order, the adapter alias, the prompt alias and finally the route's release pointer (the
commit point, see :mod:`llmops.registry.pointers`). A failure midway restores what had moved; a process
killed midway leaves the release pointer — and so what the gateway serves — on the old release, and
the audit log shows a ``pending`` record with no ``moved`` after it. ``rollback`` restores the release
the last completed move replaced, found in the audit log.

Test-only fault hook: ``LLMOPS_FAULT=promote-after-move-1`` makes the process exit abruptly right
after the first alias move (as a kill would), so crash safety can be tested for real.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from llmops.config.workspace import Workspace
from llmops.errors import LlmopsError, PromotionRefused, RegistryError
from llmops.evals.files import load_suite
from llmops.evals.spec import EvalSuite
from llmops.gitinfo import actor
from llmops.registry import Registry, connect
from llmops.registry.audit import AuditRecord
from llmops.registry.pointers import RecordedRelease
from llmops.registry.resolved import ResolvedRelease
from llmops.release import Release
from llmops.validate import yaml_files

STAGES = ("production", "canary")


@dataclass(frozen=True)
class RequiredSuite:
    path: Path
    suite: EvalSuite
    suite_hash: str


def required_suites(ws: Workspace, route: str) -> list[RequiredSuite]:
    """Suites in ``evals/`` that target ``route`` and are marked ``required: true``."""
    out = []
    for path in yaml_files(ws.asset_dir("evals")):
        suite, _, case_bytes = load_suite(path)
        if suite.required and suite.target.route == route:
            out.append(RequiredSuite(path, suite, suite.suite_hash(case_bytes)))
    return out


def passing_records(registry: Registry, route: str, release: ResolvedRelease) -> list[str]:
    """Eval record ids proving ``release`` passed every required suite; PromotionRefused names the rest."""
    ws = registry.ws
    ids, missing = [], []
    wanted = (release.release.adapter, release.release.prompt)
    for req in required_suites(ws, route):
        found = [
            r
            for r in registry.evals.find(suite_hash=req.suite_hash, verdict="pass")
            if (r.release.adapter, r.release.prompt) == wanted
        ]
        if found:
            ids.append(found[0].run_id)
        else:
            missing.append(req.path.relative_to(ws.root).as_posix())
    if missing:
        adapter = release.release.adapter
        how = f"llmops eval run SUITE --candidate {adapter}" if adapter else "llmops eval run SUITE (base model)"
        raise PromotionRefused(
            f"no passing eval record for {release.label()} on required suite(s) {', '.join(missing)}; "
            f"run `{how}` first, or use --force --reason TEXT"
        )
    return ids


@dataclass(frozen=True)
class _Move:
    kind: str  # adapter | prompt | release
    name: str
    old: int | None
    new: int | None


class _Mover:
    """Applies alias moves in order and can undo the ones applied so far."""

    def __init__(self, registry: Registry, route: str, stage: str) -> None:
        self.registry = registry
        self.route = route
        self.stage = stage
        self.done: list[_Move] = []

    def _set(self, move: _Move, version: int | None) -> None:
        reg = self.registry
        if move.kind == "release":
            reg.pointers.set_stage(self.route, self.stage, version)
            return
        store = reg.adapters if move.kind == "adapter" else reg.prompts
        if version is None:
            store.delete_alias(move.name, self.stage)
        else:
            store.set_alias(move.name, self.stage, version)

    def plan(self, current: RecordedRelease | None, target: RecordedRelease) -> list[_Move]:
        moves = []
        adapter, prompt = target.release.adapter, target.release.prompt
        if adapter is not None and adapter.version is not None:
            old = self.registry.adapters.alias_version(adapter.name, self.stage)
            moves.append(_Move("adapter", adapter.name, old, adapter.version))
        if prompt is not None and prompt.version is not None:
            old = self.registry.prompts.alias_version(prompt.name, self.stage)
            moves.append(_Move("prompt", prompt.name, old, prompt.version))
        moves.append(_Move("release", self.route, current.version if current else None, target.version))
        return moves

    def apply(self, moves: list[_Move], fault: Callable[[int], None]) -> None:
        for i, move in enumerate(moves, start=1):
            if move.old == move.new:
                continue
            self._set(move, move.new)
            self.done.append(move)
            fault(i)

    def undo(self) -> None:
        for move in reversed(self.done):
            self._set(move, move.old)
        self.done.clear()


def _fault_hook(i: int) -> None:
    if os.environ.get("LLMOPS_FAULT") == f"promote-after-move-{i}":
        os._exit(70)


def _switch(
    registry: Registry, route: str, stage: str, current: RecordedRelease | None, target: RecordedRelease,
    record: AuditRecord, fault: Callable[[int], None],
) -> AuditRecord:  # fmt: skip
    mover = _Mover(registry, route, stage)
    moves = mover.plan(current, target)
    registry.audit.append(replace(record, outcome="pending"))
    try:
        mover.apply(moves, fault)
    except Exception as exc:  # noqa: BLE001 - any failure midway is undone, audited, then re-raised
        mover.undo()
        registry.audit.append(replace(record, outcome="restored", detail=f"{record.detail}; {exc}"))
        if isinstance(exc, LlmopsError):
            raise
        raise RegistryError(f"promotion of {route}@{stage} failed and was undone: {exc}", uri=registry.uri) from exc
    return registry.audit.append(record)


def _detail(recorded: RecordedRelease) -> str:
    return recorded.release.label()


def _resolve(registry: Registry, adapter: str | None, prompt: str | None) -> ResolvedRelease:
    return registry.resolve(Release.of(registry.ws.settings.models.base_model, adapter, prompt))


def check_promotable(ws: Workspace, route: str, *, adapter: str | None, prompt: str | None) -> list[str]:
    """The eval record ids that allow promoting (adapter, prompt) on ``route``; PromotionRefused if none."""
    registry = connect(ws)
    return passing_records(registry, route, _resolve(registry, adapter, prompt))


def promote(
    ws: Workspace, route: str, *, adapter: str | None, prompt: str | None, stage: str = "production",
    force: bool = False, reason: str = "", fault: Callable[[int], None] = _fault_hook,
) -> AuditRecord:  # fmt: skip
    """Move ``route``'s ``stage`` to the release (adapter, prompt) once its eval records allow it."""
    if stage not in STAGES:
        raise LlmopsError(f"--to must be one of {', '.join(STAGES)}, not {stage!r}")
    if force and not reason.strip():
        raise LlmopsError("--force needs --reason TEXT: forced promotions are audited with their reason")
    registry = connect(ws)
    release = _resolve(registry, adapter, prompt)
    eval_ids: list[str] = []
    try:
        eval_ids = passing_records(registry, route, release)
    except PromotionRefused:
        if not force:
            raise
    current = registry.pointers.at_stage(route, stage)
    target = registry.pointers.record(route, release.release, eval_ids)
    record = AuditRecord(
        kind="release", object=route, alias=stage,
        from_version=str(current.version) if current else None, to_version=str(target.version),
        actor=actor(), reason=reason, eval_records=tuple(eval_ids), forced=force and not eval_ids,
        detail=_detail(target),
    )  # fmt: skip
    if current is not None and current.version == target.version:
        return replace(record, outcome="unchanged")
    return _switch(registry, route, stage, current, target, record, fault)


def rollback(ws: Workspace, route: str, *, stage: str = "production", reason: str = "") -> AuditRecord:
    """Restore the release that the last completed move of ``route@stage`` replaced."""
    registry = connect(ws)
    current = registry.pointers.at_stage(route, stage)
    if current is None:
        raise LlmopsError(f"route {route} has no {stage} release to roll back")
    moves = [m for m in registry.pointers.history(route, stage) if m.record.outcome == "moved"]
    previous = next((m.from_version for m in moves if m.to_version == current.version), None)
    if previous is None:
        raise LlmopsError(f"no earlier {stage} release of {route} in the audit log to roll back to")
    target = registry.pointers.get(route, previous)
    record = AuditRecord(
        kind="release", object=route, alias=stage, from_version=str(current.version), to_version=str(target.version),
        actor=actor(), reason=reason or "rollback", outcome="rolled-back", detail=_detail(target),
    )  # fmt: skip
    return _switch(registry, route, stage, current, target, record, _fault_hook)
