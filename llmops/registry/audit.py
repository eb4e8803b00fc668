"""The audit log of alias moves, stored in the registry itself.

MLflow keeps no history of alias moves, so every move (prompts, adapters, releases) appends a
record here: a run in the ``llmops-audit`` experiment whose tags hold who, when, which object,
from and to which version, why, and the eval record ids that allowed it. Records are written once
and never updated, and they live wherever the registry lives (SQLite file or MLflow server), so
every machine that shares the registry sees the same history.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from llmops.errors import LlmopsError
from llmops.registry.backend import Store
from llmops.registry.tags import AUDIT_PREFIX as _PREFIX

if TYPE_CHECKING:
    pass

AUDIT_EXPERIMENT = "llmops-audit"
#: the kind of the records ``llmops logs prune`` writes; :meth:`AuditStore.expired` never lists them
RETENTION_KIND = "retention"
_SAFE = re.compile(r"[\w@.+\-() ]{1,200}")


@dataclass(frozen=True)
class AuditRecord:
    """One alias move (or an attempt at one)."""

    kind: str  # "prompt", "adapter", "release"
    object: str  # e.g. "support-triage"
    alias: str
    from_version: str | None
    to_version: str | None
    actor: str
    reason: str = ""
    eval_records: tuple[str, ...] = ()
    forced: bool = False
    outcome: str = "moved"  # "pending", "moved", "restored", "rolled-back"; "unchanged" is never written
    detail: str = ""  # e.g. the exact adapter and prompt versions of a release
    plan: str = ""  # pending records: the planned moves (JSON, see llmops.promotion.moves), for reconciliation
    timestamp_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    record_id: str | None = None

    def tags(self) -> dict[str, str]:
        data = asdict(self)
        data.pop("record_id")
        data["eval_records"] = ",".join(self.eval_records)
        return {_PREFIX + k: "" if v is None else str(v) for k, v in data.items()}

    @classmethod
    def from_tags(cls, tags: dict[str, str], record_id: str) -> AuditRecord:
        raw = {k.removeprefix(_PREFIX): v for k, v in tags.items() if k.startswith(_PREFIX)}
        return cls(
            kind=raw.get("kind", ""),
            object=raw.get("object", ""),
            alias=raw.get("alias", ""),
            from_version=raw.get("from_version") or None,
            to_version=raw.get("to_version") or None,
            actor=raw.get("actor", ""),
            reason=raw.get("reason", ""),
            eval_records=tuple(x for x in raw.get("eval_records", "").split(",") if x),
            forced=raw.get("forced") == "True",
            outcome=raw.get("outcome", ""),
            detail=raw.get("detail", ""),
            plan=raw.get("plan", ""),
            timestamp_ms=int(raw.get("timestamp_ms") or 0),
            record_id=record_id,
        )


class AuditStore(Store):
    """Append and list audit records in the workspace registry."""

    def append(self, record: AuditRecord) -> AuditRecord:
        """Write ``record`` and return it with its record id (the MLflow run id)."""
        experiment = self._backend.ensure_experiment(AUDIT_EXPERIMENT)
        with self._backend.call(f"cannot write the audit record of {record.object}@{record.alias}"):
            run = self._client.create_run(
                experiment,
                start_time=record.timestamp_ms,
                tags=record.tags(),
                run_name=f"{record.kind}:{record.object}@{record.alias}",
            )
            self._client.set_terminated(run.info.run_id, "FINISHED", end_time=record.timestamp_ms)
        return AuditRecord(**{**asdict(record), "record_id": run.info.run_id})

    def records(
        self, object_name: str | None = None, limit: int = 200, *, actor: str | None = None, kind: str | None = None,
        since_ms: int | None = None, until_ms: int | None = None,
    ) -> list[AuditRecord]:  # fmt: skip
        """Records, newest first, optionally only those about ``object_name``, by ``actor``, of ``kind``
        (``prompt``, ``adapter``, ``release``, ``weights``, ``rollout``), written in ``[since_ms, until_ms)``."""
        experiment = self._backend.experiment_id(AUDIT_EXPERIMENT)
        if experiment is None:
            return []
        clauses = [f"tags.`{_PREFIX}{key}` = '{_literal(key, value)}'"
                   for key, value in (("object", object_name), ("actor", actor), ("kind", kind)) if value]  # fmt: skip
        if since_ms is not None:
            clauses.append(f"attributes.start_time >= {int(since_ms)}")
        if until_ms is not None:
            clauses.append(f"attributes.start_time < {int(until_ms)}")
        with self._backend.call("cannot read the audit log"):
            runs = self._client.search_runs(
                [experiment], filter_string=" and ".join(clauses), max_results=limit,
                order_by=["attributes.start_time DESC"],
            )  # fmt: skip
        return [AuditRecord.from_tags(dict(r.data.tags), r.info.run_id) for r in runs]

    def expired(self, cutoff_ms: int) -> list[AuditRecord]:
        """Every record written before ``cutoff_ms``, oldest first, except retention records (kind
        ``retention``: the evidence that a retention policy ran is never pruned by it)."""
        experiment = self._backend.experiment_id(AUDIT_EXPERIMENT)
        if experiment is None:
            return []
        found: list[AuditRecord] = []
        token: str | None = None
        query = f"attributes.start_time < {int(cutoff_ms)} and tags.`{_PREFIX}kind` != '{RETENTION_KIND}'"
        with self._backend.call("cannot read the audit log"):
            while True:
                page = self._client.search_runs(
                    [experiment], filter_string=query, max_results=1000, order_by=["attributes.start_time ASC"],
                    page_token=token,
                )  # fmt: skip
                found += [AuditRecord.from_tags(dict(r.data.tags), r.info.run_id) for r in page]
                token = page.token
                if not token:
                    return found

    def delete_before(self, cutoff_ms: int) -> int:
        """Delete (MLflow ``delete_run``) the records :meth:`expired` lists; return how many."""
        records = self.expired(cutoff_ms)
        with self._backend.call("cannot delete audit records"):
            for record in records:
                assert record.record_id is not None
                self._client.delete_run(record.record_id)
        return len(records)


def _literal(key: str, value: str) -> str:
    """``value`` as a filter literal; LlmopsError for characters a filter string cannot carry safely."""
    if not _SAFE.fullmatch(value):
        raise LlmopsError(f"--{key} {value!r}: only letters, digits, spaces and @ . _ + - ( ) are allowed")
    return value


def _move(record: AuditRecord) -> tuple[str, str, str, str | None, str | None]:
    return (record.kind, record.object, record.alias, record.from_version, record.to_version)


def settled(records: Sequence[AuditRecord]) -> list[AuditRecord]:
    """``records`` (in their order) without the write-ahead "pending" records that an outcome settles.

    A move (promote, rollback) appends "pending" before it touches any alias, then its outcome ("moved",
    "rolled-back", "restored"), usually in the same millisecond, so their order cannot be relied on. An
    outcome settles the latest not yet settled pending record of the same move (kind, object, alias,
    from, to) written at or before it, so each outcome hides at most one. A pending record nothing
    settles stays: that move died midway, even when the same move was retried and succeeded later.
    """
    unsettled: dict[tuple[str, str, str, str | None, str | None], list[tuple[int, int]]] = {}
    for i, r in enumerate(records):
        if r.outcome == "pending":
            unsettled.setdefault(_move(r), []).append((r.timestamp_ms, i))
    hidden: set[int] = set()
    for ts, i in sorted((r.timestamp_ms, i) for i, r in enumerate(records) if r.outcome != "pending"):
        earlier = [p for p in unsettled.get(_move(records[i]), []) if p[0] <= ts]
        if earlier:
            latest = max(earlier)
            unsettled[_move(records[i])].remove(latest)
            hidden.add(latest[1])
    return [r for i, r in enumerate(records) if i not in hidden]


def unsettled(records: Sequence[AuditRecord]) -> list[AuditRecord]:
    """The "pending" records in ``records`` that no outcome settles: moves that died midway (see :func:`settled`)."""
    return [r for r in settled(records) if r.outcome == "pending"]
