"""Prompt versions in the MLflow Prompt Registry.

Each version stores the chat messages as MLflow's template (shown in the MLflow UI), the
generation params as its model config, and the full canonical spec plus lineage as tags:

``llmops.spec`` (canonical JSON), ``llmops.content_sha256``, ``llmops.git_commit``,
``llmops.git_dirty``, ``llmops.path``.

``push`` registers a version only when the content hash differs from the latest version. It is
safe to run concurrently: same-machine pushes serialize on a lock file in the workspace, and
pushes from several machines converge, because after registering each push keeps only the
lowest new version with its hash and deletes its own duplicate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from filelock import FileLock

from llmops.config.workspace import Workspace
from llmops.errors import NotFoundError, RegistryError
from llmops.gitinfo import GitInfo
from llmops.prompts.refs import PromptRef, check_alias
from llmops.prompts.spec import PromptSpec

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry.prompt_version import PromptVersion

TAG_SPEC = "llmops.spec"
TAG_HASH = "llmops.content_sha256"
TAG_COMMIT = "llmops.git_commit"
TAG_DIRTY = "llmops.git_dirty"
TAG_PATH = "llmops.path"


@dataclass(frozen=True)
class PromptVersionInfo:
    """One registered prompt version, as llmops sees it."""

    name: str
    version: int
    spec: PromptSpec
    content_hash: str
    git_commit: str | None
    path: str | None
    commit_message: str | None
    aliases: tuple[str, ...]
    created_ms: int

    @property
    def uri(self) -> str:
        return f"prompts:/{self.name}/{self.version}"


@dataclass(frozen=True)
class PushResult:
    name: str
    action: Literal["registered", "unchanged", "would-register"]
    version: int | None
    path: str


def _spec_from_version(pv: PromptVersion) -> PromptSpec:
    raw = (pv.tags or {}).get(TAG_SPEC)
    if raw:
        return PromptSpec.model_validate(json.loads(raw))
    # a prompt registered outside llmops: adopt its template, variables as required strings
    template = pv.template
    messages = template if isinstance(template, list) else [{"role": "user", "content": template}]
    variables = {v: {"type": "string"} for v in sorted(pv.variables or [])}
    return PromptSpec.model_validate({"name": pv.name, "messages": messages, "variables": variables})


def _info(pv: PromptVersion) -> PromptVersionInfo:
    tags = pv.tags or {}
    spec = _spec_from_version(pv)
    return PromptVersionInfo(
        name=pv.name,
        version=int(pv.version),
        spec=spec,
        content_hash=tags.get(TAG_HASH) or spec.content_hash(),
        git_commit=tags.get(TAG_COMMIT) or None,
        path=tags.get(TAG_PATH) or None,
        commit_message=pv.commit_message,
        aliases=tuple(pv.aliases or ()),
        created_ms=int(pv.creation_timestamp or 0),
    )


class PromptRegistry:
    """Read and write prompt versions of one workspace's registry."""

    def __init__(self, client: MlflowClient, ws: Workspace) -> None:
        self._client = client
        self._ws = ws

    # -- reading -----------------------------------------------------------------------------
    def versions(self, name: str) -> list[PromptVersionInfo]:
        """All versions of ``name``, oldest first (empty when the prompt does not exist)."""
        if self._client.get_prompt(name) is None:
            return []
        out: list[PromptVersion] = []
        token = None
        while True:
            page = self._client.search_prompt_versions(name, max_results=1000, page_token=token)
            out.extend(page)
            token = page.token
            if not token:
                break
        return sorted((_info(pv) for pv in out), key=lambda i: i.version)

    def aliases(self, name: str) -> dict[str, int]:
        """Every alias of ``name`` and the version it points at.

        MLflow's prompt search leaves ``aliases`` empty, so each version is read once.
        """
        out: dict[str, int] = {}
        for info in self.versions(name):
            pv = self._client.get_prompt_version(name, info.version)
            if pv is not None:
                out.update({alias: info.version for alias in pv.aliases or ()})
        return out

    def latest(self, name: str) -> PromptVersionInfo | None:
        versions = self.versions(name)
        return versions[-1] if versions else None

    def names(self) -> list[str]:
        return sorted(p.name for p in self._client.search_prompts(max_results=1000))

    def get(self, ref: PromptRef | str) -> PromptVersionInfo:
        """The version ``ref`` points at; NotFoundError naming the reference when there is none."""
        from mlflow.exceptions import MlflowException

        ref = PromptRef.parse(ref) if isinstance(ref, str) else ref
        try:
            if ref.alias:
                pv = self._client.get_prompt_version_by_alias(ref.name, ref.alias)
            elif ref.version is not None:
                pv = self._client.get_prompt_version(ref.name, ref.version)
            else:
                latest = self.latest(ref.name)
                if latest is None:
                    raise NotFoundError(f"prompt {ref.name!r} is not registered")
                pv = self._client.get_prompt_version(ref.name, latest.version)  # search omits aliases
        except MlflowException as exc:
            raise NotFoundError(f"prompt {ref} not found: {exc.message}") from exc
        if pv is None:
            raise NotFoundError(f"prompt {ref} not found")
        return _info(pv)

    def alias_version(self, name: str, alias: str) -> int | None:
        from mlflow.exceptions import MlflowException

        try:
            pv = self._client.get_prompt_version_by_alias(name, alias)
        except MlflowException:
            return None
        return int(pv.version) if pv is not None else None

    # -- writing -----------------------------------------------------------------------------
    def _lock(self, name: str) -> FileLock:
        folder = self._ws.home / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        return FileLock(str(folder / f"prompt-{name}.lock"), timeout=300)

    def push(self, spec: PromptSpec, git: GitInfo, *, dry_run: bool = False) -> PushResult:
        """Register ``spec`` as a new version unless its content equals the latest version's."""
        digest = spec.content_hash()
        with self._lock(spec.name):
            latest = self.latest(spec.name)
            if latest is not None and latest.content_hash == digest:
                return PushResult(spec.name, "unchanged", latest.version, git.path)
            if dry_run:
                return PushResult(spec.name, "would-register", None, git.path)
            version = self._register(spec, git, digest)
            version = self._converge(spec.name, digest, version, latest.version if latest else 0)
        return PushResult(spec.name, "registered", version, git.path)

    def _register(self, spec: PromptSpec, git: GitInfo, digest: str) -> int:
        import mlflow

        tags = {
            TAG_SPEC: spec.canonical_json(),
            TAG_HASH: digest,
            TAG_PATH: git.path,
            TAG_DIRTY: str(git.dirty).lower(),
        }
        if git.commit:
            tags[TAG_COMMIT] = git.commit
        message = git.subject or f"llmops prompts push {git.path}"
        try:
            pv = mlflow.genai.register_prompt(
                name=spec.name,
                template=[m.model_dump() for m in spec.messages],
                commit_message=message,
                tags=tags,
                model_config=spec.params.as_request() or None,
            )
        except mlflow.exceptions.MlflowException as exc:
            raise RegistryError(
                f"cannot register prompt {spec.name}: {exc.message}", uri=self._ws.tracking_uri
            ) from exc
        return int(pv.version)

    def _converge(self, name: str, digest: str, mine: int, base: int) -> int:
        """Keep the lowest version above ``base`` with ``digest``; delete ``mine`` if it is a duplicate."""
        same = [v.version for v in self.versions(name) if v.version > base and v.content_hash == digest]
        keep = min(same, default=mine)
        if keep != mine:
            self._client.delete_prompt_version(name, str(mine))
        return keep

    def set_alias(self, name: str, alias: str, version: int) -> None:
        check_alias(alias)
        from mlflow.exceptions import MlflowException

        try:
            self._client.set_prompt_alias(name, alias, version)
        except MlflowException as exc:
            raise RegistryError(f"cannot set alias {name}@{alias} -> v{version}: {exc.message}") from exc

    def delete_alias(self, name: str, alias: str) -> None:
        self._client.delete_prompt_alias(name, alias)
