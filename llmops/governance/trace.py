"""``llmops trace REQUEST_ID``: from one answer back to its release, data, evals and approvers.

The chain, each link from a record (never from today's state):

1. the request-log record (any replica's file, rotated ones too): route, target, time, status, the exact
   prompt and adapter versions the gateway sent, captured input and output when sampled;
2. the release serving at that moment: the route's stage pointer *history* (audit log) at the request's
   time, matched against the versions the record names (a replica follows a moved pointer within its
   refresh interval, so the move before may still have served a request just after a move);
3. its lineage (:mod:`llmops.governance.lineage`): prompt version, adapter version, training run, base
   model and its sha256, dataset fingerprints (with ``llmops data pull`` commands), eval records;
4. who approved it: the pointer move's audit record (actor, time, reason, forced, eval records) and the
   weights and rollout records in force at that time;
5. the monitoring record whose windows cover that time, feedback on the answer, shadow answers.

The trace is one JSON document; its ``digest`` is the sha256 of its canonical form (sorted keys, no
spaces) without the digest and without where the record was read (a rotated file keeps its digest), so
an auditor can recompute it later.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from llmops.config.gateway import GatewayFile
from llmops.errors import NotFoundError
from llmops.governance.lineage import NOT_RECORDED, ReleaseLineage, not_recorded, plain, release_lineage
from llmops.governance.requests import (
    Found,
    Pruned,
    Searched,
    feedback_of,
    find_request,
    pruned_at,
    pruned_by,
    shadows_of,
)  # fmt: skip
from llmops.registry.pointers import SETTLED_MOVES
from llmops.release import Release

if TYPE_CHECKING:
    from llmops.registry import Registry
    from llmops.registry.audit import AuditRecord

#: a replica follows a moved stage pointer within its refresh (state interval 1 s, full refresh 30 s)
FOLLOW_S = 35.0
_ROLLOUT_ID = re.compile(r"rollout ([0-9a-f]{32})")
#: the request-log fields a trace carries
_REQUEST_FIELDS = (
    "id", "time", "route", "target", "api_key", "status", "stream", "latency_ms", "ttft_ms", "tokens_in",
    "tokens_out", "error", "prompt_version", "adapter_version", "shadow_of", "captured", "input", "output",
)  # fmt: skip


class RequestNotFound(NotFoundError):
    """No log record has the id; ``pruned`` says when retention removed the records of its time."""

    def __init__(self, request_id: str, searched: Searched, pruned: Pruned | None) -> None:
        self.searched = searched
        self.pruned = pruned
        where = ", ".join(searched.globs) or "(no log paths)"
        files = ", ".join(searched.files[:5]) + (
            f" and {len(searched.files) - 5} more" if len(searched.files) > 5 else ""
        )
        message = (
            f"request {request_id} not found in {len(searched.files)} log file(s) matched by {where}"
            f" ({searched.lines} records read{': ' + files if files else ''})"
        )
        if pruned is not None:
            message += (
                f"; its records were pruned: retention record {pruned.record_id} by {pruned.actor} removed every "
                f"record older than {_iso(pruned.cutoff)} ({pruned.reason})"
            )
        super().__init__(message)


@dataclass(frozen=True)
class Approval:
    """One audit record in the chain (a pointer move, a weights change, a rollout outcome)."""

    kind: str
    object: str
    alias: str
    from_version: str | None
    to_version: str | None
    actor: str
    time: str
    reason: str
    forced: bool
    outcome: str
    eval_records: tuple[str, ...]
    detail: Any
    record_id: str

    @classmethod
    def of(cls, r: AuditRecord) -> Approval:
        try:
            detail: Any = json.loads(r.detail) if r.detail.startswith(("{", "[")) else r.detail
        except ValueError:
            detail = r.detail
        return cls(r.kind, r.object, r.alias, r.from_version, r.to_version, r.actor or NOT_RECORDED,
                   _iso(r.timestamp_ms / 1000), r.reason, r.forced, r.outcome, r.eval_records, detail,
                   r.record_id or "")  # fmt: skip


@dataclass(frozen=True)
class ServedBy:
    """Which pointer put the release on the target then (``stage`` None: the target's own references)."""

    stage: str | None
    pointer_version: int | None
    note: str


@dataclass(frozen=True)
class Trace:
    request_id: str
    request: dict[str, Any]
    served_by: ServedBy
    base_model: dict[str, str]
    lineage: ReleaseLineage
    approvals: tuple[Approval, ...]
    weights: dict[str, Any] | None
    monitoring: dict[str, Any] | None
    feedback: tuple[dict[str, Any], ...]
    shadows: tuple[str, ...]
    gaps: tuple[str, ...]
    not_recorded: tuple[str, ...]
    log: dict[str, Any] = field(default_factory=dict)  # where the record was read: not part of the digest
    digest: str = ""

    def document(self) -> dict[str, Any]:
        """The trace as JSON-ready data (``--json``), digest included."""
        document: dict[str, Any] = plain(self)
        return document


def digest_of(document: dict[str, Any]) -> str:
    """sha256 of a trace document's canonical JSON, leaving out ``digest`` and ``log``."""
    body = {k: v for k, v in document.items() if k not in ("digest", "log")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def _iso(epoch_s: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _matches(release: Release, record: dict[str, Any]) -> bool:
    adapter = str(release.adapter) if release.adapter else None
    if adapter != record.get("adapter_version"):
        return False
    shown = record.get("prompt_version")  # None when the request brought its own messages (nothing rendered)
    return shown is None or shown == (str(release.prompt) if release.prompt else None)


def _stages(registry: Registry, route: str, first: Sequence[str]) -> list[str]:
    """The stages ``route``'s pointers ever had, ``first`` ones first (the target's configured stage, a stage
    named like the target), then production, canary, the rest."""
    stages = {r.alias for r in registry.audit.records(route, kind="release", limit=1000) if r.alias}
    ordered = sorted(stages, key=lambda s: (s != "production", s != "canary", s))
    return [s for s in dict.fromkeys([*first, *ordered]) if s in stages]


def target_stages(gateway: GatewayFile) -> dict[tuple[str, str], str]:
    """(route, target) → the stage its ``release:`` names, from a gateway config (shadows included)."""
    found: dict[tuple[str, str], str] = {}
    for route, spec in gateway.routes.items():
        for target in [*spec.targets, *([spec.shadow] if spec.shadow else [])]:
            if target.release:
                found[(route, target.name)] = target.release
    return found


def _served_by(
    registry: Registry, route: str, record: dict[str, Any], configured: str | None
) -> tuple[ServedBy, Release | None, tuple[str, ...], Approval | None]:
    """The stage pointer version (and its move) that served ``record``; (no stage, None…) when none matches.
    Two stages may point at the same release (a canary just promoted): the target's own stage wins."""
    at_ms = float(record.get("time") or 0) * 1000
    first = [s for s in (configured, str(record.get("target") or "")) if s]
    for stage in _stages(registry, route, first):
        moves = [m for m in registry.pointers.history(route, stage) if m.record.outcome in SETTLED_MOVES]
        earlier = [m for m in moves if m.record.timestamp_ms <= at_ms]  # newest first
        candidates = earlier[:1]
        if earlier and at_ms - earlier[0].record.timestamp_ms < FOLLOW_S * 1000 and len(earlier) > 1:
            candidates.append(earlier[1])
        for i, move in enumerate(candidates):
            recorded = registry.pointers.get(route, move.to_version)
            if _matches(recorded.release, record):
                note = f"{route}@{stage} pointed at release v{move.to_version} since {_iso(move.record.timestamp_ms / 1000)}"
                if i == 1:
                    note += " (the pointer had moved less than a refresh interval before; this replica still served it)"
                return (
                    ServedBy(stage, move.to_version, note),
                    recorded.release,
                    recorded.eval_records,
                    Approval.of(move.record),
                )
    note = "no stage pointer of the route served these versions then: the target served its own adapter/prompt"
    return ServedBy(None, None, note), None, (), None


def _weights(registry: Registry, route: str, at_s: float) -> tuple[dict[str, Any] | None, Approval | None]:
    """The weights in force at ``at_s``: the newest weights record written before it."""
    before = registry.audit.records(route, kind="weights", limit=1, until_ms=int(at_s * 1000) + 1)
    if not before:
        return None, None
    approval = Approval.of(before[0])
    detail = approval.detail if isinstance(approval.detail, dict) else {}
    weights = {"weights": detail.get("weights"), "set_by": approval.actor, "at": approval.time,
               "rollout": detail.get("rollout") or None, "record": approval.record_id}  # fmt: skip
    return weights, approval


def _rollout_records(registry: Registry, route: str, approvals: Sequence[Approval], at_s: float) -> list[Approval]:
    """The records, up to ``at_s``, of every rollout ``approvals`` name (a promotion's reason, a weights write)."""
    ids: set[str] = set()
    for a in approvals:
        ids.update(_ROLLOUT_ID.findall(a.reason))
        if isinstance(a.detail, dict) and isinstance(a.detail.get("rollout"), str):
            ids.add(a.detail["rollout"])
        elif isinstance(a.detail, str):
            ids.update(_ROLLOUT_ID.findall(a.detail))
    if not ids:
        return []
    found = registry.audit.records(route, kind="rollout", limit=1000, until_ms=int(at_s * 1000) + 1)
    return [Approval.of(r) for r in found if any(i in r.detail or i in r.reason for i in ids)]


def _monitoring(registry: Registry, route: str, at_s: float) -> dict[str, Any] | None:
    """The first monitoring record after ``at_s`` whose windows cover it (None: no monitor run saw it)."""
    after = sorted((r for r in registry.monitoring.find(route, limit=200) if r.start_ms >= at_s * 1000),
                   key=lambda r: r.start_ms)  # fmt: skip
    for record in after[:3]:
        report = registry.monitoring.artifact_json(record.run_id, "report.json") or {}
        for window in report.get("windows", []):
            if window.get("start", 0) <= at_s < window.get("end", 0):
                return {"record": record.run_id, "level": record.level, "window": [window.get("start_iso"), window.get("end_iso")],
                        "window_level": window.get("level"), "requests": window.get("requests")}  # fmt: skip
    return None


def _base_model(registry: Registry, lineage: ReleaseLineage) -> dict[str, str]:
    if lineage.adapter is not None:
        return {"name": lineage.adapter.base_model, "sha256": lineage.adapter.base_model_sha256}
    from llmops.models.base import available_without_building, resolve_base

    name = lineage.release.base_model
    if name == "reference" and available_without_building(registry.ws, name):
        return {"name": name, "sha256": resolve_base(registry.ws, name).sha256}
    return {"name": name, "sha256": NOT_RECORDED}


def trace_request(
    registry: Registry, request_id: str, *, logs: Sequence[str], feedback_logs: Sequence[str] = (),
    stages: Mapping[tuple[str, str], str] | None = None,
) -> Trace:  # fmt: skip
    """The whole chain of ``request_id`` (see the module docstring); RequestNotFound when no log holds it.
    ``stages``: (route, target) → the stage the target serves (:func:`target_stages` of the gateway config)."""
    found, searched = find_request(logs, request_id)
    if found is None:
        raise RequestNotFound(request_id, searched, pruned_by(registry.audit, request_id))
    return _trace(registry, found, feedback_logs, logs, stages or {})


def _trace(
    registry: Registry, found: Found, feedback_logs: Sequence[str], logs: Sequence[str],
    stages: Mapping[tuple[str, str], str],
) -> Trace:  # fmt: skip
    record = found.record
    route, at_s = str(record.get("route") or ""), float(record.get("time") or 0)
    configured = stages.get((route, str(record.get("target") or "")))
    served, release, eval_records, moved = _served_by(registry, route, record, configured)
    if release is None:
        release = Release.of(
            registry.ws.settings.models.base_model, record.get("adapter_version"), record.get("prompt_version")
        )
    lineage = release_lineage(registry, release, eval_records=eval_records)
    weights, weights_record = _weights(registry, route, at_s)
    named = [a for a in (moved, weights_record) if a is not None]
    approvals = sorted([*named, *_rollout_records(registry, route, named, at_s)], key=lambda a: (a.time, a.record_id))
    gaps = list(lineage.gaps)
    if moved is None and (pruned := pruned_at(registry.audit, at_s, what="audit")) is not None:
        gaps.append(f"the pointer history of that time was pruned: retention record {pruned.record_id} by "
                    f"{pruned.actor} removed audit records older than {_iso(pruned.cutoff)}")  # fmt: skip
    if moved is None and release.adapter is None and release.prompt is None:
        gaps.append("the record names neither an adapter nor a prompt version")
    trace = Trace(
        request_id=str(record.get("id")),
        request={k: record[k] for k in _REQUEST_FIELDS if k in record} | {"time_iso": _iso(at_s)},
        served_by=served,
        base_model=_base_model(registry, lineage),
        lineage=lineage,
        approvals=tuple(approvals),
        weights=weights,
        monitoring=_monitoring(registry, route, at_s),
        feedback=tuple(feedback_of(feedback_logs, str(record.get("id")))) if feedback_logs else (),
        shadows=tuple(str(s.record.get("id")) for s in shadows_of(logs, str(record.get("id")))),
        gaps=tuple(gaps),
        not_recorded=(),
        log={"file": str(found.file), "line": found.line},
    )
    trace = replace(trace, not_recorded=tuple(not_recorded(plain(trace), "")))
    return replace(trace, digest=digest_of(trace.document()))
