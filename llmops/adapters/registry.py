"""Adapter versions in the MLflow Model Registry.

An adapter version is a version of registered model ``NAME`` whose source is the run artifact
folder ``adapter/`` (safetensors + ``adapter_config.json`` + ``llmops-adapter.json`` manifest). Its
tags carry the lineage (:data:`LINEAGE_TAGS`) and ``llmops.sha256``, the manifest's sha256, which
every download verifies. Training sets no alias: promotion is a separate, gated step.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from filelock import FileLock

from llmops.adapters.manifest import verify, write_manifest
from llmops.config.workspace import Workspace
from llmops.errors import NotFoundError, RegistryError
from llmops.refs import VersionRef, check_alias

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

TAG_KIND = "llmops.kind"
TAG_SHA = "llmops.sha256"
ARTIFACT_DIR = "adapter"
#: lineage tags every registered adapter version carries (values may be "" when not applicable)
LINEAGE_TAGS = (
    "llmops.base_model",
    "llmops.base_model_sha256",
    "llmops.dataset_fingerprint",
    "llmops.prompt_version",
    "llmops.git_commit",
    "llmops.job_spec_sha256",
    "llmops.run_id",
    "llmops.init_adapter",  # NAME/VERSION@SHA256 this adapter continued training from ("" for a fresh LoRA)
)


@dataclass(frozen=True)
class AdapterRef(VersionRef):
    kind: ClassVar[str] = "adapter"


@dataclass(frozen=True)
class AdapterVersionInfo:
    name: str
    version: int
    source: str
    run_id: str | None
    sha256: str
    aliases: tuple[str, ...]
    created_ms: int
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"

    @property
    def lora_name(self) -> str:
        """The name an engine knows this version by: ``NAME-vVERSION`` (safe in URLs and model ids)."""
        return f"{self.name}-v{self.version}"


def _info(mv: ModelVersion) -> AdapterVersionInfo:
    tags = dict(mv.tags or {})
    return AdapterVersionInfo(
        name=mv.name,
        version=int(mv.version),
        source=mv.source or "",
        run_id=mv.run_id,
        sha256=tags.get(TAG_SHA, ""),
        aliases=tuple(getattr(mv, "aliases", None) or ()),
        created_ms=int(mv.creation_timestamp or 0),
        tags=tags,
    )


class AdapterRegistry:
    """Register, look up, alias and fetch adapter versions of one workspace's registry."""

    def __init__(self, client: MlflowClient, ws: Workspace) -> None:
        self._client = client
        self._ws = ws

    def register(self, name: str, adapter_dir: Path, run_id: str, lineage: dict[str, str]) -> AdapterVersionInfo:
        """Write the manifest, log ``adapter_dir`` as run artifacts and register a new version of ``name``."""
        from mlflow.exceptions import MlflowException

        self.check_name_free(name)
        sha = write_manifest(adapter_dir, {k: v for k, v in lineage.items() if k in LINEAGE_TAGS})
        try:
            self._client.create_registered_model(name, tags={TAG_KIND: "adapter"})
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise RegistryError(f"cannot create adapter {name}: {exc.message}") from exc
        self._client.log_artifacts(run_id, str(adapter_dir), artifact_path=ARTIFACT_DIR)
        run = self._client.get_run(run_id)
        tags = {TAG_KIND: "adapter", TAG_SHA: sha, **{k: lineage.get(k, "") for k in LINEAGE_TAGS}}
        tags["llmops.run_id"] = run_id
        mv = self._client.create_model_version(
            name, f"{run.info.artifact_uri}/{ARTIFACT_DIR}", run_id=run_id, tags=tags
        )
        return _info(mv)

    def check_name_free(self, name: str) -> None:
        """Refuse ``name`` when a registered model of another kind (a prompt, a base model) holds it.

        Why: MLflow keeps prompts and registered models in one namespace. ``create_registered_model`` on
        a prompt's name fails with "already exists" while ``get_registered_model`` says "not found", and
        a model version created under that name silently becomes a version of the *prompt*.
        """
        from mlflow.exceptions import MlflowException

        if self._client.get_prompt(name) is not None:
            kind = "prompt"
        else:
            try:
                existing = self._client.get_registered_model(name)
            except MlflowException as exc:
                if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                    return
                raise RegistryError(f"cannot look up registered model {name}: {exc.message}") from exc
            kind = (existing.tags or {}).get(TAG_KIND, "model")
        if kind != "adapter":
            raise RegistryError(
                f"cannot register adapter {name!r}: the registry already holds a {kind} of that name; "
                f"name the adapter differently (`adapter:` in the job file), e.g. {name}-lora"
            )

    def names(self) -> list[str]:
        models = self._client.search_registered_models(max_results=1000)
        return sorted(m.name for m in models if (m.tags or {}).get(TAG_KIND) == "adapter")

    def versions(self, name: str) -> list[AdapterVersionInfo]:
        found = [
            mv
            for mv in self._client.search_model_versions(f"name = '{name}'")
            if (mv.tags or {}).get(TAG_KIND) == "adapter"
        ]
        if not found:
            return []
        # search results carry no aliases: the registered model lists them (alias -> version)
        by_version: dict[int, list[str]] = {}
        for alias, version in (self._client.get_registered_model(name).aliases or {}).items():
            by_version.setdefault(int(version), []).append(alias)
        infos = (_info(mv) for mv in found)
        return sorted(
            (replace(i, aliases=tuple(sorted(by_version.get(i.version, ())))) for i in infos), key=lambda i: i.version
        )

    def get(self, ref: AdapterRef | str) -> AdapterVersionInfo:
        from mlflow.exceptions import MlflowException

        ref = AdapterRef.parse(ref) if isinstance(ref, str) else ref
        try:
            if ref.alias:
                mv = self._client.get_model_version_by_alias(ref.name, ref.alias)
            elif ref.version is not None:
                mv = self._client.get_model_version(ref.name, str(ref.version))
            else:
                versions = self.versions(ref.name)
                if not versions:
                    raise NotFoundError(f"adapter {ref.name!r} is not registered")
                return versions[-1]
        except MlflowException as exc:
            raise NotFoundError(f"adapter {ref} not found: {exc.message}") from exc
        info = _info(mv)
        if info.tags.get(TAG_KIND) != "adapter":
            raise NotFoundError(f"{ref} is a registered model but not an llmops adapter")
        return info

    def alias_version(self, name: str, alias: str) -> int | None:
        from mlflow.exceptions import MlflowException

        try:
            return int(self._client.get_model_version_by_alias(name, alias).version)
        except MlflowException:
            return None

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self._client.set_registered_model_alias(name, check_alias(alias), str(version))

    def delete_alias(self, name: str, alias: str) -> None:
        self._client.delete_registered_model_alias(name, alias)

    def fetch(self, ref: AdapterRef | str | AdapterVersionInfo, cache_dir: Path | None = None) -> Path:
        """A local, sha256-verified copy of the adapter version (cached; a bad cache entry is refetched)."""
        import mlflow.artifacts

        info = ref if isinstance(ref, AdapterVersionInfo) else self.get(ref)
        if not info.sha256:
            raise RegistryError(f"adapter {info.ref} has no {TAG_SHA} tag; refusing to load it")
        root = (cache_dir or self._ws.cache_dir / "adapters") / info.name
        target = root / f"v{info.version}-{info.sha256[:12]}"
        root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(root / f".v{info.version}.lock"), timeout=600):
            if target.is_dir():
                try:
                    verify(target, info.sha256)
                    return target
                except Exception:  # noqa: BLE001 - a corrupt cache entry is replaced, then verified again
                    shutil.rmtree(target)
            tmp = Path(tempfile.mkdtemp(prefix=".fetch-", dir=root))
            try:
                mlflow.artifacts.download_artifacts(
                    artifact_uri=info.source, dst_path=str(tmp), tracking_uri=self._ws.tracking_uri
                )
                fetched = tmp / Path(info.source.rstrip("/")).name
                verify(fetched, info.sha256)
                fetched.rename(target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return target
