"""The audit log of alias moves, stored in the registry itself.

MLflow keeps no history of alias moves, so every move (prompts, adapters, releases) appends a
record here: a run in the ``llmops-audit`` experiment whose tags hold who, when, which object,
from and to which version, why, and the eval record ids that allowed it. Records are written once
and never updated, and they live wherever the registry lives (SQLite file or MLflow server), so
every machine that shares the registry sees the same history.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from llmops.config.workspace import Workspace
from llmops.registry.tracking import ensure_experiment

if TYPE_CHECKING:
    from mlflow import MlflowClient

AUDIT_EXPERIMENT = "llmops-audit"
_PREFIX = "llmops.audit."


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
    outcome: str = "moved"  # "pending", "moved", "restored", "rolled-back"
    detail: str = ""  # e.g. the exact adapter and prompt versions of a release
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
            timestamp_ms=int(raw.get("timestamp_ms") or 0),
            record_id=record_id,
        )


class AuditLog:
    """Append and list audit records in the workspace registry."""

    def __init__(self, client: MlflowClient, ws: Workspace) -> None:
        self._client = client
        self._ws = ws

    def _experiment_id(self) -> str:
        return ensure_experiment(self._client, self._ws, AUDIT_EXPERIMENT)

    def append(self, record: AuditRecord) -> AuditRecord:
        """Write ``record`` and return it with its record id (the MLflow run id)."""
        run = self._client.create_run(
            self._experiment_id(),
            start_time=record.timestamp_ms,
            tags=record.tags(),
            run_name=f"{record.kind}:{record.object}@{record.alias}",
        )
        self._client.set_terminated(run.info.run_id, "FINISHED", end_time=record.timestamp_ms)
        return AuditRecord(**{**asdict(record), "record_id": run.info.run_id})

    def records(self, object_name: str | None = None, limit: int = 200) -> list[AuditRecord]:
        """Records, newest first, optionally only those about ``object_name``."""
        exp = self._client.get_experiment_by_name(AUDIT_EXPERIMENT)
        if exp is None:
            return []
        filt = f"tags.`{_PREFIX}object` = '{object_name}'" if object_name else ""
        runs = self._client.search_runs(
            [exp.experiment_id], filter_string=filt, max_results=limit, order_by=["attributes.start_time DESC"]
        )
        return [AuditRecord.from_tags(dict(r.data.tags), r.info.run_id) for r in runs]
