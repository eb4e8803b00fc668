"""The one base-model resolver: a ``base_model`` setting → a local folder (and its content hash).

Every command that needs a base model (fine-tuning, scoring, ``serve engine``, evals that start an
engine, the demo) goes through :func:`locate_base` (the folder) or :func:`resolve_base` (the folder and
its sha256). ``reference`` is the workspace's reference model, built once from ``llmops.yaml``'s
``models.reference`` settings by :func:`workspace_reference`; a relative path is read against the
workspace root; anything else is a hub id that must already be in the local Hugging Face cache.

Why a hash: the adapter's lineage must say *which* weights it was trained on; a name such as
``reference`` or a hub id can point at different files over time. The hash is the one the registry
already uses for that model where there is one (the reference model's manifest ``sha256``, also tagged
on its ``reference-base`` registry version), else :func:`directory_sha256` of the folder's files.

No network: a hub id must already be in the local Hugging Face cache.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llmops.config.workspace import Workspace
from llmops.errors import ModelError
from llmops.models.hashing import directory_sha256, file_sha256
from llmops.models.reference import (
    MANIFEST,
    ReferenceModel,
    ensure_reference_model,
    load_reference_model,
    model_dir_name,
)
from llmops.models.shipped import shipped_folder
from llmops.models.spec import DEFAULT_STEPS, ReferenceSpec

Progress = Callable[[float, float], None]


@dataclass(frozen=True)
class BaseModel:
    ref: str  # as the job (or --base-model) names it
    path: str  # local folder transformers loads
    sha256: str


def _looks_like_path(value: str) -> bool:
    return value.startswith(("/", "./", "../", "~")) or value.count("/") > 1


def _snapshot_sha256(folder: Path) -> str:
    """Hub snapshots are symlinks into a blob store: hash what the links point at."""
    h = hashlib.sha256()
    for entry in sorted(folder.rglob("*"), key=lambda p: p.relative_to(folder).as_posix()):
        if entry.is_file():
            h.update(entry.relative_to(folder).as_posix().encode() + b"\0")
            h.update(bytes.fromhex(file_sha256(entry.resolve())))
    return h.hexdigest()


def workspace_reference_spec(ws: Workspace) -> ReferenceSpec:
    """The reference model ``llmops.yaml`` asks for (``models.reference``)."""
    settings = ws.settings.models.reference
    try:
        return ReferenceSpec(seed=settings.seed, steps=settings.steps or DEFAULT_STEPS)
    except ValueError as exc:
        raise ModelError(f"{ws.config_path.name} [models.reference]: {exc}") from exc


def workspace_reference(ws: Workspace, *, progress: Progress | None = None) -> ReferenceModel:
    """The workspace's reference model, built (a couple of minutes) the first time, cached after."""
    return ensure_reference_model(ws.models_dir, spec=workspace_reference_spec(ws), progress=progress)


def _local_folder(ws: Workspace, ref: str) -> Path | None:
    """The folder ``ref`` names, or None when it names no local path (a hub id)."""
    path = Path(ref).expanduser()
    if not path.is_absolute():
        path = ws.root / path
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"base model {ref}: {path} holds no config.json (not a transformers model folder)")
        return path
    if _looks_like_path(ref) or path.exists():
        raise ModelError(f"base model {ref}: no such folder ({path})")
    return None


def _hub_snapshot(ref: str) -> Path:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(ref, local_files_only=True))
    except Exception as exc:  # noqa: BLE001 - hub raises many types for "not cached"; all mean the same here
        raise ModelError(
            f"base model {ref!r} is neither a local folder nor in the Hugging Face cache (no downloads here); "
            "point base_model at a model folder"
        ) from exc


def locate_base(ws: Workspace, ref: str | None = None, *, progress: Progress | None = None) -> str:
    """The local folder of base model ``ref`` (default: the workspace's ``models.base_model``)."""
    ref = ref or ws.settings.models.base_model
    if ref == "reference":
        return str(workspace_reference(ws, progress=progress).path)
    folder = _local_folder(ws, ref)
    return str(folder if folder is not None else _hub_snapshot(ref))


def resolve_base(ws: Workspace, ref: str, *, progress: Progress | None = None) -> BaseModel:
    """The base model ``ref`` names, with its sha256: ``reference`` (built if missing), a folder, a cached hub id."""
    if ref == "reference":
        model = workspace_reference(ws, progress=progress)
        return BaseModel(ref, str(model.path), model.sha256)
    folder = _local_folder(ws, ref)
    if folder is not None:
        if (folder / MANIFEST).is_file():
            return BaseModel(ref, str(folder), load_reference_model(folder).sha256)
        return BaseModel(ref, str(folder), directory_sha256(folder))
    snapshot = _hub_snapshot(ref)
    return BaseModel(ref, str(snapshot), _snapshot_sha256(snapshot))


def available_without_building(ws: Workspace, ref: str) -> bool:
    """True unless ``ref`` is ``reference`` and that model is neither built nor shipped (a ~4 minute build)."""
    if ref != "reference":
        return True
    name = model_dir_name(workspace_reference_spec(ws).config_hash())
    return (ws.models_dir / name / MANIFEST).is_file() or shipped_folder(name, manifest=MANIFEST) is not None
