"""A release's lineage: what each part of it is, where it came from, and what evaluated it.

:func:`release_lineage` follows one exact :class:`~llmops.release.Release` through the registry: the
prompt version (content hash, git commit, path), the adapter version (sha256, training run, base model
and its sha256, job spec hash, git commit, the datasets it trained and validated on, stored or not),
and the eval records that gated it (suite, metrics, verdict, reports, the case files they scored).
``llmops trace`` and ``llmops report`` both read it. A field the registry does not hold is
:data:`NOT_RECORDED`; a record that should exist and does not (a deleted version, a missing run) is
a *gap*, listed in :attr:`ReleaseLineage.gaps` so ``--strict`` can refuse the chain.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmops.errors import LlmopsError
from llmops.registry import tags
from llmops.release import Release

if TYPE_CHECKING:
    from llmops.registry import Registry
    from llmops.registry.adapters import AdapterVersionInfo
    from llmops.registry.prompts import PromptVersionInfo

NOT_RECORDED = "not recorded"
#: MLflow dataset-input contexts → the role a dataset played
_ROLES = {"training": "train", "train": "train", "eval": "eval", "eval-cases": "eval-cases"}
#: training-run tags worth showing (the rest are lineage tags shown on the adapter itself)
_RUN_TAGS = (tags.JOB, tags.JOB_FILE, tags.PRECISION, tags.BATCHING, tags.RESUMED_FROM_STEP, tags.STOPPED_AT_STEP)


def _or_missing(value: str | None) -> str:
    return value if value else NOT_RECORDED


@dataclass(frozen=True)
class DatasetLineage:
    """One data file a run used: its role, fingerprint, path, rows, and whether the registry holds its bytes."""

    role: str
    fingerprint: str
    path: str
    rows: int | None
    stored: bool

    @property
    def pull_command(self) -> str:
        """How to get the file back (only meaningful when :attr:`stored`)."""
        return f"llmops data pull {self.fingerprint} -o data-{self.fingerprint[:12]}"


@dataclass(frozen=True)
class PromptLineage:
    ref: str
    content_sha256: str
    git_commit: str
    git_dirty: bool | None
    path: str
    created_ms: int
    description: str


@dataclass(frozen=True)
class AdapterLineage:
    ref: str
    sha256: str
    run_id: str
    base_model: str
    base_model_sha256: str
    job_spec_sha256: str
    git_commit: str
    init_adapter: str
    datasets: tuple[DatasetLineage, ...]
    training: dict[str, Any]
    created_ms: int


@dataclass(frozen=True)
class EvalLineage:
    run_id: str
    suite: str
    suite_hash: str
    verdict: str
    metrics: dict[str, float]
    start_ms: int
    reports: tuple[str, ...]
    datasets: tuple[DatasetLineage, ...]


@dataclass(frozen=True)
class ReleaseLineage:
    release: Release
    key: str
    adapter: AdapterLineage | None
    prompt: PromptLineage | None
    evals: tuple[EvalLineage, ...]
    gaps: tuple[str, ...] = field(default=())


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data: dataclasses and releases become dicts (keys sorted by the JSON writer)."""
    if isinstance(value, Release):
        return value.canonical()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _datasets(
    registry: Registry, run_id: str, gaps: list[str], *, expected: Sequence[tuple[str, str]] = ()
) -> tuple[DatasetLineage, ...]:
    """The dataset inputs of ``run_id`` (plus ``expected`` (role, fingerprint) pairs the run does not list)."""
    found: list[DatasetLineage] = []
    seen: set[tuple[str, str]] = set()
    pairs = [
        (_ROLES.get(i.context, i.context or "input"), i.fingerprint, i.path) for i in registry.datasets.inputs(run_id)
    ]
    pairs += [(role, fp, "") for role, fp in expected]
    for role, fingerprint, path in pairs:
        if not fingerprint or (role, fingerprint) in seen:
            continue
        seen.add((role, fingerprint))
        info = registry.datasets.find(fingerprint)
        if info is None:
            gaps.append(f"dataset {fingerprint[:12]} ({role}, {path or 'path not recorded'}): its files are not stored")
        found.append(
            DatasetLineage(
                role=role,
                fingerprint=fingerprint,
                path=path or (info.source if info else NOT_RECORDED),
                rows=info.rows if info else None,
                stored=info is not None,
            )
        )
    return tuple(found)


def _prompt(info: PromptVersionInfo) -> PromptLineage:
    return PromptLineage(
        ref=info.ref,
        content_sha256=info.content_hash,
        git_commit=_or_missing(info.git_commit),
        git_dirty=info.git_dirty,
        path=_or_missing(info.path),
        created_ms=info.created_ms,
        description=info.spec.description or NOT_RECORDED,
    )


def _adapter(registry: Registry, info: AdapterVersionInfo, gaps: list[str]) -> AdapterLineage:
    t = info.tags
    run_id = t.get(tags.RUN_ID) or info.run_id or ""
    training: dict[str, Any] = {}
    datasets: tuple[DatasetLineage, ...] = ()
    expected = [("train", t[tags.DATASET_FINGERPRINT])] if t.get(tags.DATASET_FINGERPRINT) else []
    run = registry.runs.find(run_id) if run_id else None
    if run is None:
        gaps.append(f"adapter {info.ref}: training run {run_id or NOT_RECORDED} is not in the registry")
        datasets = tuple(
            DatasetLineage(role, fp, NOT_RECORDED, None, registry.datasets.find(fp) is not None)
            for role, fp in expected
        )
    else:
        training = {
            "status": run.status,
            "metrics": dict(sorted(run.metrics.items())),
            **{k.removeprefix("llmops."): run.tags[k] for k in _RUN_TAGS if run.tags.get(k)},
        }
        datasets = _datasets(registry, run_id, gaps, expected=expected)
    return AdapterLineage(
        ref=info.ref,
        sha256=_or_missing(info.sha256),
        run_id=_or_missing(run_id),
        base_model=_or_missing(t.get(tags.BASE_MODEL)),
        base_model_sha256=_or_missing(t.get(tags.BASE_MODEL_SHA256)),
        job_spec_sha256=_or_missing(t.get(tags.JOB_SPEC_SHA256)),
        git_commit=_or_missing(t.get(tags.GIT_COMMIT)),
        init_adapter=t.get(tags.INIT_ADAPTER) or "",
        datasets=datasets,
        training=training,
        created_ms=info.created_ms,
    )


def _evals(registry: Registry, release: Release, record_ids: Sequence[str], gaps: list[str]) -> tuple[EvalLineage, ...]:
    from llmops.errors import NotFoundError

    records = []
    if record_ids:
        for run_id in record_ids:
            try:
                records.append(registry.evals.get(run_id))
            except NotFoundError:
                gaps.append(f"eval record {run_id} (named by the release pointer) is not in the registry")
    else:
        records = registry.evals.find(release_key=release.key)
    return tuple(
        EvalLineage(
            run_id=r.run_id,
            suite=r.suite,
            suite_hash=r.suite_hash,
            verdict=r.verdict,
            metrics=dict(sorted(r.metrics.items())),
            start_ms=r.start_ms,
            reports=tuple(registry.evals.reports(r)),
            datasets=_datasets(registry, r.run_id, gaps),
        )
        for r in sorted(records, key=lambda r: (r.start_ms, r.run_id))
    )


def release_lineage(registry: Registry, release: Release, *, eval_records: Sequence[str] = ()) -> ReleaseLineage:
    """The lineage of exact ``release``; ``eval_records``: the records that allowed it (a pointer's), else every
    record of its key. Missing registry records become gaps, never errors."""
    if not release.is_exact:
        raise LlmopsError(f"release {release.label()} names an alias: resolve it before tracing its lineage")
    gaps: list[str] = []
    prompt = adapter = None
    if release.prompt is not None:
        found_prompt = registry.prompts.find(release.prompt)
        if found_prompt is None:
            gaps.append(f"prompt {release.prompt}: version not in the registry (deleted?)")
        else:
            prompt = _prompt(found_prompt)
    if release.adapter is not None:
        found_adapter = registry.adapters.find(release.adapter)
        if found_adapter is None:
            gaps.append(f"adapter {release.adapter}: version not in the registry (deleted?)")
        else:
            adapter = _adapter(registry, found_adapter, gaps)
    evals = _evals(registry, release, eval_records, gaps)
    return ReleaseLineage(release, release.key, adapter, prompt, evals, tuple(gaps))


def not_recorded(value: Any, where: str = "") -> list[str]:
    """The paths (``adapter.git_commit``…) of every field of ``value`` that is :data:`NOT_RECORDED`."""
    if isinstance(value, str):
        return [where] if value == NOT_RECORDED else []
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [
            p for f in dataclasses.fields(value) for p in not_recorded(getattr(value, f.name), _join(where, f.name))
        ]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in not_recorded(v, _join(where, str(k)))]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in not_recorded(v, f"{where}[{i}]")]
    return []


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name
