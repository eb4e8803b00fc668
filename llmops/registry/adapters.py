"""Adapter versions in the MLflow Model Registry.

An adapter version is a version of registered model ``NAME`` whose source is the run artifact
folder ``adapter/`` (safetensors + ``adapter_config.json`` + ``llmops-adapter.json`` manifest). Its
tags carry the lineage (:data:`llmops.registry.tags.LINEAGE`) and ``llmops.sha256``, the manifest's sha256, which
every download verifies. Training sets no alias: promotion is a separate, gated step.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock

from llmops.adapters.manifest import verify, write_manifest
from llmops.errors import IntegrityError, NotFoundError, RegistryError
from llmops.names import check_name
from llmops.refs import AdapterRef, check_alias
from llmops.registry import tags
from llmops.registry.backend import Store

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

ARTIFACT_DIR = "adapter"
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


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
    def exact_ref(self) -> AdapterRef:
        return AdapterRef(self.name, version=self.version)

    @property
    def lora_name(self) -> str:
        """The name an engine knows this version by: see :func:`lora_name`."""
        return lora_name(self.name, self.version, self.sha256)


def lora_name(name: str, version: int, sha256: str) -> str:
    """The name an engine serves an adapter version under: ``NAME-vVERSION-SHA12``, with the first 12 hex
    digits of its sha256 (safe in URLs and model ids). The digest makes "loaded under this name" mean
    "these exact weights": an adapter someone else loaded under a guessed ``NAME-vVERSION``, or an older
    registry's version of the same number, is never taken for it."""
    return f"{name}-v{version}-{sha256[:12]}"


def _info(mv: ModelVersion) -> AdapterVersionInfo:
    found = dict(mv.tags or {})
    return AdapterVersionInfo(
        name=mv.name,
        version=int(mv.version),
        source=mv.source or "",
        run_id=mv.run_id,
        sha256=found.get(tags.SHA256, ""),
        aliases=tuple(getattr(mv, "aliases", None) or ()),
        created_ms=int(mv.creation_timestamp or 0),
        tags=found,
    )


class AdapterStore(Store):
    """Register, look up, alias and fetch adapter versions of one workspace's registry."""

    def register(self, name: str, adapter_dir: Path, run_id: str, lineage: dict[str, str]) -> AdapterVersionInfo:
        """Write the manifest, log ``adapter_dir`` as run artifacts and register a new version of ``name``."""
        from mlflow.exceptions import MlflowException

        check_name(name, "adapter")
        self.check_name_free(name)
        sha = write_manifest(adapter_dir, {k: v for k, v in lineage.items() if k in tags.LINEAGE})
        try:
            self._client.create_registered_model(name, tags={tags.KIND: tags.KIND_ADAPTER})
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                self._backend.fail(f"cannot create adapter {name}", exc)
        values = {tags.KIND: tags.KIND_ADAPTER, tags.SHA256: sha, **{k: lineage.get(k, "") for k in tags.LINEAGE}}
        values[tags.RUN_ID] = run_id
        with self._backend.call(f"cannot register a version of adapter {name}"):
            self._client.log_artifacts(run_id, str(adapter_dir), artifact_path=ARTIFACT_DIR)
            run = self._client.get_run(run_id)
            mv = self._client.create_model_version(
                name, f"{run.info.artifact_uri}/{ARTIFACT_DIR}", run_id=run_id, tags=values
            )
            self._client.set_tag(run_id, tags.ADAPTER_VERSION, f"{name}/{mv.version}")
        return _info(mv)

    def set_tag(self, ref: AdapterRef | str, key: str, value: str) -> None:
        """Set one tag on an adapter version (e.g. :data:`llmops.registry.tags.DEMO_STEPS`)."""
        info = self.get(ref)
        with self._backend.call(f"cannot tag adapter {info.ref}"):
            self._client.set_model_version_tag(info.name, str(info.version), key, value)

    def check_name_free(self, name: str) -> None:
        """Refuse ``name`` when a registered model of another kind (a prompt, a base model) holds it.

        Why: MLflow keeps prompts and registered models in one namespace. ``create_registered_model`` on
        a prompt's name fails with "already exists" while ``get_registered_model`` says "not found", and
        a model version created under that name silently becomes a version of the *prompt*.
        """
        with self._backend.call(f"cannot look up {name}"):
            is_prompt = self._client.get_prompt(name) is not None
        if is_prompt:
            kind = "prompt"
        else:
            existing = self._backend.lookup(
                f"cannot look up registered model {name}", lambda: self._client.get_registered_model(name)
            )
            if existing is None:
                return
            kind = (existing.tags or {}).get(tags.KIND, "model")
        if kind != tags.KIND_ADAPTER:
            raise RegistryError(
                f"cannot register adapter {name!r}: the registry already holds a {kind} of that name; "
                f"name the adapter differently (`adapter:` in the job file), e.g. {name}-lora"
            )

    def names(self) -> list[str]:
        with self._backend.call("cannot list adapters"):
            models = self._client.search_registered_models(max_results=1000)
        return sorted(m.name for m in models if (m.tags or {}).get(tags.KIND) == tags.KIND_ADAPTER)

    def versions(self, name: str) -> list[AdapterVersionInfo]:
        with self._backend.call(f"cannot list versions of adapter {name}"):
            found = [
                mv
                for mv in self._client.search_model_versions(f"name = '{name}'")
                if (mv.tags or {}).get(tags.KIND) == tags.KIND_ADAPTER
            ]
            if not found:
                return []
            # search results carry no aliases: the registered model lists them (alias -> version)
            aliases = self._client.get_registered_model(name).aliases or {}
        by_version: dict[int, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(int(version), []).append(alias)
        infos = (_info(mv) for mv in found)
        return sorted(
            (replace(i, aliases=tuple(sorted(by_version.get(i.version, ())))) for i in infos), key=lambda i: i.version
        )

    def find(self, ref: AdapterRef | str) -> AdapterVersionInfo | None:
        """The version ``ref`` points at; None when the adapter, version or alias does not exist."""
        ref = AdapterRef.parse(ref) if isinstance(ref, str) else ref
        what = f"cannot look up adapter {ref}"
        name, alias, version = ref.name, ref.alias, ref.version
        if alias:
            mv = self._backend.lookup(what, lambda: self._client.get_model_version_by_alias(name, alias))
        elif version is not None:
            mv = self._backend.lookup(what, lambda: self._client.get_model_version(name, str(version)))
        else:
            versions = self.versions(name)
            return versions[-1] if versions else None
        if mv is None:
            return None
        info = _info(mv)
        if info.tags.get(tags.KIND) != tags.KIND_ADAPTER:
            raise NotFoundError(f"{ref} is a registered model but not an llmops adapter")
        return info

    def get(self, ref: AdapterRef | str) -> AdapterVersionInfo:
        """The version ``ref`` points at; NotFoundError naming the reference when there is none."""
        found = self.find(ref)
        if found is None:
            raise NotFoundError(f"adapter {ref} not found")
        return found

    def alias_version(self, name: str, alias: str) -> int | None:
        """The version ``name@alias`` points at; None when the adapter or the alias does not exist."""
        found = self.find(AdapterRef(name, alias=alias))
        return found.version if found is not None else None

    def set_alias(self, name: str, alias: str, version: int) -> None:
        with self._backend.call(f"cannot set alias {name}@{alias} -> v{version}"):
            self._client.set_registered_model_alias(name, check_alias(alias), str(version))

    def delete_alias(self, name: str, alias: str) -> None:
        with self._backend.call(f"cannot delete alias {name}@{alias}"):
            self._client.delete_registered_model_alias(name, alias)

    def fetch(self, ref: AdapterRef | str | AdapterVersionInfo, cache_dir: Path | None = None) -> Path:
        """A local, sha256-verified copy of the adapter version (cached; a bad cache entry is refetched)."""
        import mlflow.artifacts

        info = ref if isinstance(ref, AdapterVersionInfo) else self.get(ref)
        if not info.sha256:
            raise IntegrityError(f"adapter {info.ref} has no {tags.SHA256} tag; refusing to load it")
        if _SHA256_RE.fullmatch(info.sha256) is None:  # the tag becomes part of a cache path: 64 hex digits only
            raise IntegrityError(
                f"adapter {info.ref}: its {tags.SHA256} tag is not a sha256 (64 lowercase hex digits); refusing to load it"
            )
        root = (cache_dir or self._backend.ws.cache_dir / "adapters") / info.name
        target = root / f"v{info.version}-{info.sha256[:12]}"
        root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(root / f".v{info.version}.lock"), timeout=600):
            if target.is_dir():
                try:
                    verify(target, info.sha256)
                    return target
                except (IntegrityError, OSError, ValueError):  # a corrupt cache entry is replaced, then verified again
                    shutil.rmtree(target)
            tmp = Path(tempfile.mkdtemp(prefix=".fetch-", dir=root))
            try:
                with self._backend.call(f"cannot download adapter {info.ref}"):
                    mlflow.artifacts.download_artifacts(
                        artifact_uri=info.source, dst_path=str(tmp), tracking_uri=self._backend.uri
                    )
                fetched = tmp / Path(info.source.rstrip("/")).name
                verify(fetched, info.sha256)
                fetched.rename(target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return target
