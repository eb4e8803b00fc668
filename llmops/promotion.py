"""Gated promotion and rollback of a route's release.

``promote`` checks that a passing eval record exists for exactly the release (adapter version +
prompt version) on every suite in ``evals/`` that targets the route with ``required: true``; then it
moves, in order, the adapter alias, the prompt alias and finally the route's release pointer (the
commit point, see :mod:`llmops.release_store`). A failure midway restores what had moved; a process
killed midway leaves the release pointer — and so what the gateway serves — on the old release, and
the audit log shows a ``pending`` record with no ``moved`` after it. ``rollback`` restores the release
the last completed move replaced, found in the audit log.

Test-only fault hook: ``LLMOPS_FAULT=promote-after-move-1`` makes the process exit abruptly right
after the first alias move (as a kill would), so crash safety can be tested for real.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llmops.adapters.registry import AdapterRegistry
from llmops.audit import AuditLog, AuditRecord
from llmops.config.workspace import Workspace
from llmops.errors import LlmopsError, PromotionRefused, RegistryError
from llmops.evals.files import load_suite
from llmops.evals.record import find_records
from llmops.evals.spec import EvalSuite
from llmops.gitinfo import actor
from llmops.prompts.registry import PromptRegistry
from llmops.registry.tracking import connect
from llmops.release_store import ReleaseStore, ReleaseVersion
from llmops.releases import Release, resolve
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


def passing_records(ws: Workspace, route: str, release: Release) -> list[str]:
    """Eval record ids proving ``release`` passed every required suite; PromotionRefused names the rest."""
    client = connect(ws)
    ids, missing = [], []
    for req in required_suites(ws, route):
        found = find_records(
            client, suite_hash=req.suite_hash, verdict="pass", adapter=release.adapter_ref, prompt=release.prompt_ref
        )
        if found:
            ids.append(found[0].run_id)
        else:
            missing.append(req.path.relative_to(ws.root).as_posix())
    if missing:
        raise PromotionRefused(
            f"no passing eval record for {release.label()} on required suite(s) {', '.join(missing)}; "
            f"run `llmops eval run SUITE --candidate {release.adapter_ref}` first, or use --force --reason TEXT"
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

    def __init__(self, ws: Workspace, route: str, stage: str) -> None:
        client = connect(ws)
        self.adapters = AdapterRegistry(client, ws)
        self.prompts = PromptRegistry(client, ws)
        self.store = ReleaseStore(client, ws)
        self.route = route
        self.stage = stage
        self.done: list[_Move] = []

    def _set(self, move: _Move, version: int | None) -> None:
        if move.kind == "release":
            self.store.set_stage(self.route, self.stage, version)
        elif move.kind == "adapter":
            if version is None:
                self.adapters.delete_alias(move.name, self.stage)
            else:
                self.adapters.set_alias(move.name, self.stage, version)
        elif version is None:
            self.prompts.delete_alias(move.name, self.stage)
        else:
            self.prompts.set_alias(move.name, self.stage, version)

    def plan(self, current: ReleaseVersion | None, target: ReleaseVersion) -> list[_Move]:
        moves = []
        for kind, ref, get_old in (
            ("adapter", target.adapter, self.adapters.alias_version),
            ("prompt", target.prompt, self.prompts.alias_version),
        ):
            if ref != "none":
                name, _, version = ref.partition("/")
                moves.append(_Move(kind, name, get_old(name, self.stage), int(version)))
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
    ws: Workspace, route: str, stage: str, current: ReleaseVersion | None, target: ReleaseVersion,
    record: AuditRecord, fault: Callable[[int], None],
) -> AuditRecord:  # fmt: skip
    audit = AuditLog(connect(ws), ws)
    mover = _Mover(ws, route, stage)
    moves = mover.plan(current, target)
    audit.append(AuditRecord(**{**record.__dict__, "outcome": "pending"}))
    try:
        mover.apply(moves, fault)
    except Exception as exc:  # noqa: BLE001 - any failure midway is undone, audited, then re-raised
        mover.undo()
        audit.append(AuditRecord(**{**record.__dict__, "outcome": "restored", "detail": f"{record.detail}; {exc}"}))
        if isinstance(exc, LlmopsError):
            raise
        raise RegistryError(f"promotion of {route}@{stage} failed and was undone: {exc}", uri=ws.tracking_uri) from exc
    return audit.append(record)


def _detail(rv: ReleaseVersion) -> str:
    return f"adapter {rv.adapter}, prompt {rv.prompt}"


def check_promotable(ws: Workspace, route: str, *, adapter: str | None, prompt: str | None) -> list[str]:
    """The eval record ids that allow promoting (adapter, prompt) on ``route``; PromotionRefused if none."""
    client = connect(ws)
    release = resolve(
        AdapterRegistry(client, ws), PromptRegistry(client, ws),
        base_model=ws.settings.models.base_model, adapter=adapter, prompt=prompt,
    )  # fmt: skip
    return passing_records(ws, route, release)


def promote(
    ws: Workspace, route: str, *, adapter: str | None, prompt: str | None, stage: str = "production",
    force: bool = False, reason: str = "", fault: Callable[[int], None] = _fault_hook,
) -> AuditRecord:  # fmt: skip
    """Move ``route``'s ``stage`` to the release (adapter, prompt) once its eval records allow it."""
    if stage not in STAGES:
        raise LlmopsError(f"--to must be one of {', '.join(STAGES)}, not {stage!r}")
    if force and not reason.strip():
        raise LlmopsError("--force needs --reason TEXT: forced promotions are audited with their reason")
    client = connect(ws)
    release = resolve(
        AdapterRegistry(client, ws), PromptRegistry(client, ws),
        base_model=ws.settings.models.base_model, adapter=adapter, prompt=prompt,
    )  # fmt: skip
    eval_ids: list[str] = []
    try:
        eval_ids = passing_records(ws, route, release)
    except PromotionRefused:
        if not force:
            raise
    store = ReleaseStore(client, ws)
    current = store.at_stage(route, stage)
    target = store.record(route, release, eval_ids)
    record = AuditRecord(
        kind="release", object=route, alias=stage,
        from_version=str(current.version) if current else None, to_version=str(target.version),
        actor=actor(), reason=reason, eval_records=tuple(eval_ids), forced=force and not eval_ids,
        detail=_detail(target),
    )  # fmt: skip
    if current is not None and current.version == target.version:
        return AuditRecord(**{**record.__dict__, "outcome": "unchanged"})
    return _switch(ws, route, stage, current, target, record, fault)


def rollback(ws: Workspace, route: str, *, stage: str = "production", reason: str = "") -> AuditRecord:
    """Restore the release that the last completed move of ``route@stage`` replaced."""
    client = connect(ws)
    store = ReleaseStore(client, ws)
    current = store.at_stage(route, stage)
    if current is None:
        raise LlmopsError(f"route {route} has no {stage} release to roll back")
    history = [
        r for r in AuditLog(client, ws).records(route, limit=1000)
        if r.kind == "release" and r.alias == stage and r.outcome == "moved"
    ]  # fmt: skip
    previous = next((r.from_version for r in history if r.to_version == str(current.version)), None)
    if previous is None:
        raise LlmopsError(f"no earlier {stage} release of {route} in the audit log to roll back to")
    target = store.get(route, int(previous))
    record = AuditRecord(
        kind="release", object=route, alias=stage, from_version=str(current.version), to_version=str(target.version),
        actor=actor(), reason=reason or "rollback", outcome="rolled-back", detail=_detail(target),
    )  # fmt: skip
    return _switch(ws, route, stage, current, target, record, _fault_hook)
