"""The reference base model: build it once, cache it by config hash, verify it on load.

Why: no model can be downloaded here, yet fine-tuning, serving and evals need a real causal LM with a
chat template. :func:`ensure_reference_model` gives every command the same small Llama, built from a
seed once (3.5-5.5 min on a 2-core machine, see :mod:`llmops.models.spec`) and reused; the default
spec's build ships with the package and is copied instead (:mod:`llmops.models.shipped`).

Layout of a built model folder ``<models_dir>/reference-<config hash[:12]>/``::

    config.json  generation_config.json  model.safetensors          (transformers, safetensors only)
    tokenizer.json  tokenizer_config.json  chat_template.jinja      (byte-level BPE + chat template)
    llmops-model.json                                               (manifest, see below)

The manifest records the spec, the config hash, ``sha256`` (:func:`directory_sha256` of every other
file) and build facts (params, losses, seconds). It is written last, inside a temporary sibling folder
that is renamed into place, so a folder with a valid manifest is always a complete build.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from llmops.errors import ModelError
from llmops.models.build_process import build_in_child
from llmops.models.hashing import directory_sha256
from llmops.models.shipped import shipped_folder
from llmops.models.spec import DEFAULT_STEPS, Progress, ReferenceSpec

MANIFEST = "llmops-model.json"
MANIFEST_KIND = "llmops-reference-model"
#: How long a second process waits for a concurrent build of the same model before giving up.
LOCK_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class ReferenceModel:
    """A built reference model folder, as recorded in its manifest."""

    path: Path
    sha256: str
    params: int
    config_hash: str
    seed: int
    steps: int
    start_loss: float
    end_loss: float
    build_seconds: float


def model_dir_name(config_hash: str) -> str:
    return f"reference-{config_hash[:12]}"


def _from_manifest(path: Path, data: dict[str, Any]) -> ReferenceModel:
    try:
        return ReferenceModel(
            path=path,
            sha256=str(data["sha256"]),
            params=int(data["params"]),
            config_hash=str(data["config_hash"]),
            seed=int(data["spec"]["seed"]),
            steps=int(data["spec"]["steps"]),
            start_loss=float(data["start_loss"]),
            end_loss=float(data["end_loss"]),
            build_seconds=float(data["build_seconds"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"reference model manifest {path / MANIFEST} is incomplete: {exc!r}") from exc


def load_reference_model(path: Path, *, verify: bool = True) -> ReferenceModel:
    """Read the manifest of a built folder; with ``verify``, check the files still hash to ``sha256``."""
    manifest = Path(path) / MANIFEST
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(f"{path} is not a built reference model (no {MANIFEST})") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read reference model manifest {manifest}: {exc}") from exc
    if not isinstance(data, dict) or data.get("kind") != MANIFEST_KIND:
        raise ModelError(f"{manifest} is not a reference model manifest")
    model = _from_manifest(Path(path), data)
    if verify:
        actual = directory_sha256(Path(path), exclude=[MANIFEST])
        if actual != model.sha256:
            raise ModelError(
                f"reference model at {path} was modified after it was built "
                f"(sha256 {actual[:12]}, manifest says {model.sha256[:12]}); delete the folder to rebuild it"
            )
    return model


def _resolve_spec(seed: int | None, steps: int | None, spec: ReferenceSpec | None) -> ReferenceSpec:
    if spec is not None:
        if (seed is not None and seed != spec.seed) or (steps is not None and steps != spec.steps):
            raise ModelError("pass either seed/steps or a spec that carries them, not both")
        return spec
    try:
        return ReferenceSpec(seed=0 if seed is None else seed, steps=DEFAULT_STEPS if steps is None else steps)
    except ValueError as exc:
        raise ModelError(f"invalid reference model settings: {exc}") from exc


def _build(folder: Path, spec: ReferenceSpec, progress: Progress | None, *, isolated: bool) -> dict[str, float]:
    if isolated:
        return build_in_child(folder, spec, progress)
    from llmops.models.pretrain import build_into  # torch + transformers: import only when building

    return asdict(build_into(folder, spec, progress))


@contextmanager
def _staged(target: Path, doing: str) -> Iterator[Path]:
    """A temporary sibling folder of ``target`` to fill; renamed to ``target`` when the block succeeds, so a
    folder with a manifest is always complete; removed when it fails."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        os.rename(tmp, target)
    except OSError as exc:
        raise ModelError(f"cannot {doing} {target}: {exc}") from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def build_reference_model(
    out_dir: Path,
    *,
    seed: int | None = None,
    steps: int | None = None,
    progress: Progress | None = None,
    spec: ReferenceSpec | None = None,
    isolated: bool = True,
) -> ReferenceModel:
    """Build the reference model into ``out_dir`` (which must not exist yet) and return its record.

    ``seed`` defaults to 0 and ``steps`` (optimizer steps, not seconds) to :data:`DEFAULT_STEPS`; the same
    seed and steps give the same files. ``progress(done, total)`` is called after every step. ``spec``
    replaces every build setting at once (tests use a smaller one) and then carries seed and steps.
    ``isolated`` trains in a child process (faster on a busy machine, see
    :mod:`llmops.models.build_process`); ``False`` trains in this process, with the same result.
    """
    spec = _resolve_spec(seed, steps, spec)
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise ModelError(f"cannot build the reference model into {out_dir}: it already exists")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with _staged(out_dir, "write the reference model to") as tmp:
        result = _build(tmp, spec, progress, isolated=isolated)
        manifest = {
            "kind": MANIFEST_KIND,
            "config_hash": spec.config_hash(),
            "sha256": directory_sha256(tmp),
            "params": int(result["params"]),
            "start_loss": round(result["start_loss"], 4),
            "end_loss": round(result["end_loss"], 4),
            "train_seconds": round(result["train_seconds"], 2),
            "build_seconds": round(time.monotonic() - started, 2),
            "spec": spec.as_dict(),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return load_reference_model(out_dir, verify=False)


def _copy_shipped(shipped: Path, target: Path, config_hash: str) -> ReferenceModel:
    """Copy a shipped build into ``target`` after checking it is that spec's build, untouched."""
    model = load_reference_model(shipped)  # raises when its files no longer match its manifest
    if model.config_hash != config_hash:
        raise ModelError(f"shipped reference model {shipped} was built for another spec; delete it or rebuild it")
    with _staged(target, "copy the shipped reference model to") as tmp:
        shutil.copytree(shipped, tmp, dirs_exist_ok=True)
    return load_reference_model(target, verify=False)


def ensure_reference_model(
    models_dir: Path,
    *,
    seed: int | None = None,
    steps: int | None = None,
    progress: Progress | None = None,
    spec: ReferenceSpec | None = None,
    isolated: bool = True,
    use_shipped: bool = True,
) -> ReferenceModel:
    """The reference model for ``(seed, steps)`` under ``models_dir``: reused when there, else copied
    from the package's shipped build of that spec (``use_shipped``, see :mod:`llmops.models.shipped`),
    else built.

    Concurrent callers (two CLI commands, parallel tests) serialise on a lock file next to the folder,
    so the model is built once and the others wait and reuse it.
    """
    spec = _resolve_spec(seed, steps, spec)
    models_dir = Path(models_dir)
    config_hash = spec.config_hash()  # generates the corpus text: once per call
    target = models_dir / model_dir_name(config_hash)
    if (target / MANIFEST).is_file():
        return load_reference_model(target)
    models_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(models_dir / f".{target.name}.lock"), timeout=LOCK_TIMEOUT_S)
    try:
        with lock:
            if (target / MANIFEST).is_file():
                return load_reference_model(target)
            if target.exists():
                raise ModelError(f"{target} exists but holds no finished build; delete it to rebuild")
            shipped = shipped_folder(target.name, manifest=MANIFEST) if use_shipped else None
            if shipped is not None:
                return _copy_shipped(shipped, target, config_hash)
            return build_reference_model(target, spec=spec, progress=progress, isolated=isolated)
    except Timeout as exc:
        raise ModelError(f"gave up after {LOCK_TIMEOUT_S:.0f} s waiting for another build of {target}") from exc
