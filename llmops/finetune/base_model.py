"""Resolve a job's ``base_model`` to a local folder and a content hash, before any work starts.

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


def resolve_base(ws: Workspace, ref: str, *, progress: Progress | None = None) -> BaseModel:
    """The base model ``ref`` names: ``reference`` (built if missing), a local folder, or a cached hub id."""
    from llmops.models.reference import MANIFEST, ensure_reference_model, load_reference_model

    if ref == "reference":
        from llmops.models.spec import DEFAULT_STEPS

        settings = ws.settings.models.reference
        model = ensure_reference_model(
            ws.models_dir, seed=settings.seed, steps=settings.steps or DEFAULT_STEPS, progress=progress
        )
        return BaseModel(ref, str(model.path), model.sha256)
    path = Path(ref).expanduser()
    if not path.is_absolute():
        path = ws.root / path
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"base model {ref}: {path} holds no config.json (not a transformers model folder)")
        if (path / MANIFEST).is_file():
            return BaseModel(ref, str(path), load_reference_model(path).sha256)
        return BaseModel(ref, str(path), directory_sha256(path))
    if _looks_like_path(ref) or path.exists():
        raise ModelError(f"base model {ref}: no such folder ({path})")
    try:
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(ref, local_files_only=True))
    except Exception as exc:  # noqa: BLE001 - hub raises many types for "not cached"; all mean the same here
        raise ModelError(
            f"base model {ref!r} is neither a local folder nor in the Hugging Face cache (no downloads here); "
            "point base_model at a model folder"
        ) from exc
    return BaseModel(ref, str(folder), _snapshot_sha256(folder))


def available_without_building(ws: Workspace, ref: str) -> bool:
    """True unless ``ref`` is ``reference`` and that model has not been built yet (a ~2 minute job)."""
    if ref != "reference":
        return True
    from llmops.models.reference import MANIFEST, model_dir_name
    from llmops.models.spec import DEFAULT_STEPS, ReferenceSpec

    settings = ws.settings.models.reference
    spec = ReferenceSpec(seed=settings.seed, steps=settings.steps or DEFAULT_STEPS)
    return (ws.models_dir / model_dir_name(spec.config_hash()) / MANIFEST).is_file()
