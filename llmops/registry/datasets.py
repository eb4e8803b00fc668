"""Versioned datasets: the exact files a job trained or was evaluated on, stored content-addressed in the registry.

One MLflow run per fingerprint in experiment :data:`DATASETS_EXPERIMENT`; the original files' bytes are its
artifacts (``data/<file name>``), so :meth:`DatasetStore.pull` restores byte-identical files. Tags:
``llmops.kind=dataset``, ``llmops.sha256`` (the fingerprint) and ``llmops.dataset.*`` (name, kind, rows,
source, the validation summary as JSON, the per-file sha256 list as JSON).

The fingerprint is the key and the caller's choice:

* JSONL rows (training, eval and retraining sets): :func:`llmops.finetune.rows.fingerprint`, the sha256 of
  the rows' canonical JSON, as the adapter lineage tag ``llmops.dataset_fingerprint`` holds;
* eval case files (:func:`case_file_fingerprint`): when every non-blank line is a JSON object, the same
  canonical-rows fingerprint (so a held-out training split used as cases has its training fingerprint,
  and reformatting the file keeps it); otherwise the sha256 of the file's bytes.

Storing is idempotent: a FINISHED run with the fingerprint is reused. Two concurrent stores may both write
one; readers take the oldest FINISHED run, and a run that died midway (not FINISHED) is never read.
Lookups by fingerprint search by tag, never by listing every dataset.

A run that used a dataset logs it as an ``mlflow.data`` input (:meth:`DatasetStore.log_input`) with the
context (``training``, ``eval``, ``eval-cases``, ``retrain``), its source path, rows and validation summary;
:meth:`DatasetStore.inputs` reads them back.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmops.errors import IntegrityError, LlmopsError, NotFoundError, RegistryError
from llmops.registry import tags
from llmops.registry.backend import Store

if TYPE_CHECKING:
    from mlflow.entities import Run

DATASETS_EXPERIMENT = "llmops-datasets"
ARTIFACT_DIR = "data"
KINDS = ("training", "eval", "eval-cases", "retrain")
_HEX = re.compile(r"[0-9a-f]{8,64}")
_KIND = re.compile(r"[a-z][a-z-]{0,40}")
_TAG_LIMIT = 8000  # MLflow's run tag value limit
_INPUT_TAG_LIMIT = 500  # MLflow's dataset input tag value limit
_DIGEST_CHARS = 32  # MLflow's dataset digest column holds 36 characters


@dataclass(frozen=True)
class DatasetFile:
    name: str
    sha256: str  # of the file's bytes
    bytes: int


@dataclass(frozen=True)
class DatasetInfo:
    fingerprint: str
    name: str
    kind: str
    files: tuple[DatasetFile, ...]
    rows: int
    source: str  # workspace-relative source path(s), comma-separated
    validation: dict[str, Any]
    run_id: str
    artifact_uri: str
    created_ms: int


@dataclass(frozen=True)
class DatasetInput:
    """A dataset a run logged as input: its context (``training``, ``eval``…), name, workspace path and fingerprint."""

    context: str
    name: str
    path: str
    fingerprint: str
    rows: int | None = None
    validation: dict[str, Any] = field(default_factory=dict)


def file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def check_fingerprint(value: str, *, full: bool = False) -> str:
    """``value`` lower-cased; LlmopsError unless it is 64 hex digits (``full``) or a prefix of at least 8."""
    text = value.strip().lower()
    if not _HEX.fullmatch(text) or (full and len(text) != 64):
        wanted = "64 hex digits" if full else "8 to 64 hex digits"
        raise LlmopsError(f"{value!r} is not a dataset fingerprint ({wanted})")
    return text


def case_file_fingerprint(path: Path) -> tuple[str, int]:
    """(fingerprint, rows) of a JSONL file: the canonical-rows sha256 of :func:`llmops.finetune.rows.fingerprint`
    (each non-blank line's JSON with sorted keys and no spaces, ``\\n``-terminated, in order) when every line
    is a JSON object, else the sha256 of the bytes. ``rows`` counts the non-blank lines."""
    data = path.read_bytes()
    lines = [line for line in data.decode("utf-8", errors="replace").splitlines() if line.strip()]
    digest = hashlib.sha256()
    try:
        for line in lines:
            value = json.loads(line)
            if not isinstance(value, dict):
                raise ValueError("not a row")
            digest.update(json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n")
    except ValueError:
        return hashlib.sha256(data).hexdigest(), len(lines)
    return (digest.hexdigest() if lines else hashlib.sha256(data).hexdigest()), len(lines)


def _json_tag(value: Any, what: str) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    if len(text) > _TAG_LIMIT:
        raise LlmopsError(f"the {what} of the dataset is too long to record ({len(text)} > {_TAG_LIMIT} characters)")
    return text


def _info(run: Run) -> DatasetInfo:
    found = dict(run.data.tags)
    files = json.loads(found.get(tags.DATASET_FILES) or "[]")
    return DatasetInfo(
        fingerprint=found.get(tags.SHA256, ""),
        name=found.get(tags.DATASET_NAME, ""),
        kind=found.get(tags.DATASET_KIND, ""),
        files=tuple(DatasetFile(str(f["name"]), str(f["sha256"]), int(f["bytes"])) for f in files),
        rows=int(found.get(tags.DATASET_ROWS) or 0),
        source=found.get(tags.DATASET_SOURCE, ""),
        validation=json.loads(found.get(tags.DATASET_VALIDATION) or "{}"),
        run_id=run.info.run_id,
        artifact_uri=run.info.artifact_uri or "",
        created_ms=int(run.info.start_time or 0),
    )


def _oldest_per_fingerprint(runs: Sequence[Run]) -> list[DatasetInfo]:
    """One info per fingerprint (its oldest run), newest first."""
    oldest: dict[str, Run] = {}
    for run in runs:
        key = run.data.tags.get(tags.SHA256, "")
        if key not in oldest or (run.info.start_time or 0) < (oldest[key].info.start_time or 0):
            oldest[key] = run
    return sorted((_info(r) for r in oldest.values()), key=lambda i: (-i.created_ms, i.fingerprint))


class DatasetStore(Store):
    """Store, find, list and pull versioned datasets; log and read a run's dataset inputs."""

    def _search(self, *clauses: str) -> list[Run]:
        experiment = self._backend.experiment_id(DATASETS_EXPERIMENT)
        if experiment is None:
            return []
        query = " and ".join(
            [f"tags.`{tags.KIND}` = '{tags.KIND_DATASET}'", "attributes.status = 'FINISHED'", *clauses]
        )
        found: list[Run] = []
        token: str | None = None
        with self._backend.call("cannot search datasets"):
            while True:
                page = self._client.search_runs(
                    [experiment], query, order_by=["attributes.start_time ASC"], max_results=1000, page_token=token
                )
                found += list(page)
                token = page.token
                if not token:
                    return found

    def store(
        self,
        files: Sequence[Path],
        *,
        fingerprint: str,
        name: str,
        kind: str,
        rows: int,
        source: str,
        validation: Mapping[str, Any] | None = None,
    ) -> DatasetInfo:
        """Store ``files`` (their bytes) under ``fingerprint``, or return the dataset already stored under it."""
        fingerprint = check_fingerprint(fingerprint, full=True)
        if kind not in KINDS:
            raise LlmopsError(f"dataset kind {kind!r} is not one of {', '.join(KINDS)}")
        existing = self.find(fingerprint)
        if existing is not None:
            return existing
        paths = [Path(p) for p in files]
        if not paths:
            raise LlmopsError(f"dataset {name}: no files to store")
        names = [p.name for p in paths]
        if len(set(names)) != len(names):
            raise LlmopsError(f"dataset {name}: two files share a name ({', '.join(names)})")
        try:
            listed = [DatasetFile(p.name, file_sha256(p), p.stat().st_size) for p in paths]
        except OSError as exc:
            raise LlmopsError(f"dataset {name}: cannot read {exc.filename}: {exc.strerror}") from exc
        values = {
            tags.KIND: tags.KIND_DATASET,
            tags.SHA256: fingerprint,
            tags.DATASET_NAME: name,
            tags.DATASET_KIND: kind,
            tags.DATASET_ROWS: str(int(rows)),
            tags.DATASET_SOURCE: source[:_TAG_LIMIT],
            tags.DATASET_VALIDATION: _json_tag(dict(validation or {}), "validation summary"),
            tags.DATASET_FILES: _json_tag([asdict(f) for f in listed], "file list"),
        }
        experiment = self._backend.ensure_experiment(DATASETS_EXPERIMENT)
        what = f"cannot store dataset {name} ({fingerprint[:12]})"
        with self._backend.call(what):
            run = self._client.create_run(experiment, run_name=f"{kind}:{name}", tags=values)
        run_id = str(run.info.run_id)
        try:
            with self._backend.call(what):
                for path in paths:
                    self._client.log_artifact(run_id, str(path), artifact_path=ARTIFACT_DIR)
                self._client.set_terminated(run_id, "FINISHED")
        except RegistryError:
            with contextlib.suppress(Exception):  # the first failure is the one to report
                self._client.set_terminated(run_id, "FAILED")
            raise
        stored = self.find(fingerprint)  # the oldest finished copy (a concurrent store may have won)
        if stored is None:
            raise RegistryError(f"{what}: the stored run {run_id} cannot be found", uri=self._backend.uri)
        return stored

    def find(self, fingerprint: str) -> DatasetInfo | None:
        """The dataset of a full fingerprint or a unique prefix (>= 8 hex digits); None when none is stored."""
        key = check_fingerprint(fingerprint)
        if len(key) == 64:
            runs = self._search(f"tags.`{tags.SHA256}` = '{key}'")
        else:
            runs = self._search(f"tags.`{tags.SHA256}` LIKE '{key}%'")
        found = _oldest_per_fingerprint(runs)
        if len(found) > 1:
            shown = ", ".join(i.fingerprint[:12] for i in found[:5])
            raise LlmopsError(f"fingerprint prefix {key} is ambiguous: it matches {shown}; give more digits")
        return found[0] if found else None

    def get(self, fingerprint: str) -> DatasetInfo:
        """The dataset of ``fingerprint``; NotFoundError naming it (and the registry) when none is stored."""
        info = self.find(fingerprint)
        if info is None:
            raise NotFoundError(f"no dataset {fingerprint} in {self._backend.uri}")
        return info

    def list(self, kind: str | None = None) -> list[DatasetInfo]:
        """Every stored dataset (of ``kind``), newest first."""
        if kind is not None and not _KIND.fullmatch(kind):
            raise LlmopsError(f"dataset kind {kind!r} is not one of {', '.join(KINDS)}")
        clauses = [f"tags.`{tags.DATASET_KIND}` = '{kind}'"] if kind else []
        return _oldest_per_fingerprint(self._search(*clauses))

    def used_by(self, fingerprint: str) -> builtins.list[str]:
        """``NAME/VERSION`` of every adapter version whose ``llmops.dataset_fingerprint`` is ``fingerprint``."""
        key = check_fingerprint(fingerprint, full=True)
        query = f"tags.`{tags.DATASET_FINGERPRINT}` = '{key}'"
        with self._backend.call("cannot search adapter versions by dataset"):
            versions = list(self._client.search_model_versions(query))
        return sorted(f"{v.name}/{v.version}" for v in versions)

    def pull(self, fingerprint: str, out_dir: Path, *, force: bool = False) -> builtins.list[Path]:
        """Write the dataset's files into ``out_dir`` under their original names, each sha256-checked first.

        NotFoundError for an unknown fingerprint, IntegrityError for a stored file that does not match its
        recorded sha256, LlmopsError for a different file already in ``out_dir`` (unless ``force``); in each
        case nothing is written.
        """
        import mlflow.artifacts

        info = self.get(fingerprint)
        for item in info.files:
            target = out_dir / item.name
            if target.exists() and not force and (not target.is_file() or file_sha256(target) != item.sha256):
                raise LlmopsError(f"{target} exists and differs from {item.name} of dataset {info.fingerprint[:12]}"
                                  " (pass --force to overwrite it)")  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="llmops-pull-") as tmp:
            downloaded = self._backend.lookup(
                f"cannot download dataset {info.fingerprint[:12]} (run {info.run_id})",
                lambda: mlflow.artifacts.download_artifacts(
                    run_id=info.run_id, artifact_path=ARTIFACT_DIR, dst_path=tmp, tracking_uri=self._backend.uri
                ),
            )
            folder = Path(downloaded) if downloaded else Path(tmp) / ARTIFACT_DIR
            for item in info.files:
                got = folder / item.name
                if not got.is_file():
                    raise IntegrityError(
                        f"dataset {info.fingerprint[:12]}: {item.name} is missing from its stored copy"
                    )
                digest = file_sha256(got)
                if digest != item.sha256 or got.stat().st_size != item.bytes:
                    raise IntegrityError(
                        f"dataset {info.fingerprint[:12]}: stored {item.name} has sha256 {digest[:12]}…, "
                        f"recorded {item.sha256[:12]}… (the artifact store was altered); nothing written"
                    )
            out_dir.mkdir(parents=True, exist_ok=True)
            written = []
            for item in info.files:
                target = out_dir / item.name
                shutil.move(str(folder / item.name), str(target))
                written.append(target)
        return written

    def log_input(self, run_id: str, info: DatasetInfo, *, context: str, name: str | None = None,
                  origin: Path | None = None) -> None:  # fmt: skip
        """Log ``info`` as an ``mlflow.data`` input of run ``run_id`` (what ``mlflow.log_input`` records)."""
        from mlflow.entities import Dataset, InputTag
        from mlflow.entities import DatasetInput as MlflowInput

        source = json.dumps({"uri": str(origin.resolve()) if origin else f"runs:/{info.run_id}/{ARTIFACT_DIR}"})
        profile = json.dumps({"num_rows": info.rows, "files": len(info.files)})
        dataset = Dataset(name or info.name, info.fingerprint[:_DIGEST_CHARS], "local", source, profile=profile)
        validation = json.dumps(info.validation, sort_keys=True, separators=(",", ":"))
        values = {
            "mlflow.data.context": context,
            tags.SHA256: info.fingerprint,
            tags.SOURCE_PATH: info.source,
            tags.DATASET_KIND: info.kind,
            tags.DATASET_ROWS: str(info.rows),
            tags.DATASET_RUN: info.run_id,
            tags.DATASET_VALIDATION: validation if len(validation) <= _INPUT_TAG_LIMIT else "",
        }
        input_tags = [InputTag(k, v[:_INPUT_TAG_LIMIT]) for k, v in values.items() if v]
        with self._backend.call(f"cannot log dataset {dataset.name} to run {run_id}"):
            self._client.log_inputs(run_id, datasets=[MlflowInput(dataset, tags=input_tags)])

    def inputs(self, run_id: str) -> builtins.list[DatasetInput]:
        """The dataset inputs run ``run_id`` logged ([] when there are none or the run does not exist)."""
        run = self._backend.lookup(f"cannot read run {run_id}", lambda: self._client.get_run(run_id))
        if run is None or run.inputs is None:
            return []
        found = []
        for item in run.inputs.dataset_inputs or []:
            values = {t.key: t.value for t in item.tags or []}
            rows = values.get(tags.DATASET_ROWS, "")
            try:
                validation = json.loads(values.get(tags.DATASET_VALIDATION) or "{}")
            except json.JSONDecodeError:
                validation = {}
            found.append(
                DatasetInput(
                    context=values.get("mlflow.data.context", ""),
                    name=item.dataset.name,
                    path=values.get(tags.SOURCE_PATH, ""),
                    fingerprint=values.get(tags.SHA256, ""),
                    rows=int(rows) if rows.isdigit() else None,
                    validation=validation if isinstance(validation, dict) else {},
                )
            )
        return found
