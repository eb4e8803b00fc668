"""Prompt versions in the MLflow Prompt Registry.

Each version stores the chat messages as MLflow's template (shown in the MLflow UI), the
generation params as its model config, and the full canonical spec plus lineage as tags:

``llmops.spec`` (canonical JSON), ``llmops.content_sha256``, ``llmops.git_commit``,
``llmops.git_dirty``, ``llmops.path`` (see :mod:`llmops.registry.tags`).

Reading a version recomputes its content hash from the stored spec (tags are mutable) and checks the
spec against the registered template: a mismatch is an :class:`~llmops.errors.IntegrityError` naming
the version. ``push`` registers a version only when the content hash differs from the latest version. It is
safe to run concurrently: same-machine pushes serialize on a lock file in the workspace, and
pushes from several machines converge (see :meth:`PromptStore._converge`): a version whose predecessor
has the same content is deleted by its own push, and every push reports the first version of the run of
identical content it belongs to, a version that is never deleted.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar

from filelock import FileLock

from llmops.errors import IntegrityError, NotFoundError, RegistryError
from llmops.gitinfo import GitInfo
from llmops.prompts.spec import PromptSpec
from llmops.refs import PromptRef, check_alias
from llmops.registry import tags
from llmops.registry.backend import Store

#: calls refused because a concurrent registration was half done are retried this often (~1.8 s in all)
_REGISTER_ATTEMPTS = 8
#: MLflow's message while a concurrent registration has created the model but not yet tagged it a prompt
_HALF_REGISTERED = "is registered as a model, not a"
T = TypeVar("T")

if TYPE_CHECKING:
    from mlflow.entities.model_registry.prompt_version import PromptVersion


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
    git_dirty: bool | None = None  # None: not recorded (pushed from outside a git work tree)

    @property
    def uri(self) -> str:
        return f"prompts:/{self.name}/{self.version}"

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"

    @property
    def exact_ref(self) -> PromptRef:
        return PromptRef(self.name, version=self.version)


@dataclass(frozen=True)
class PushResult:
    name: str
    action: Literal["registered", "unchanged", "would-register"]
    version: int | None
    path: str


def _spec_from_version(pv: PromptVersion) -> PromptSpec:
    raw = (pv.tags or {}).get(tags.PROMPT_SPEC)
    if raw:
        return PromptSpec.model_validate(json.loads(raw))
    # a prompt registered outside llmops: adopt its template, variables as required strings
    template = pv.template
    messages = template if isinstance(template, list) else [{"role": "user", "content": template}]
    variables = {v: {"type": "string"} for v in sorted(pv.variables or [])}
    return PromptSpec.model_validate({"name": pv.name, "messages": messages, "variables": variables})


def _checked_hash(pv: PromptVersion, spec: PromptSpec) -> str:
    """The spec's content hash, recomputed; IntegrityError naming the version when the stored copies disagree.

    Tags are mutable: the ``llmops.content_sha256`` tag must equal the hash of the stored spec, and the
    spec's messages must equal the template MLflow registered with the version.
    """
    digest = spec.content_hash()
    label = f"prompt {pv.name} v{pv.version}"
    recorded = (pv.tags or {}).get(tags.PROMPT_CONTENT_SHA256)
    if recorded and recorded != digest:
        raise IntegrityError(
            f"{label}: its {tags.PROMPT_CONTENT_SHA256} tag ({recorded[:12]}…) is not the hash of its content "
            f"({digest[:12]}…); the version was altered after it was registered"
        )
    template = pv.template
    registered = [m.model_dump() for m in spec.messages]
    if (pv.tags or {}).get(tags.PROMPT_SPEC) and isinstance(template, list) and template != registered:
        raise IntegrityError(f"{label}: its {tags.PROMPT_SPEC} tag does not match the registered template")
    return digest


def _run_start(listed: list[PromptVersionInfo], at: int) -> int:
    """The first version of the run of identical content that ends at ``listed[at]`` (``listed``: oldest first)."""
    start = at
    while start > 0 and listed[start - 1].content_hash == listed[at].content_hash:
        start -= 1
    return listed[start].version


def _info(pv: PromptVersion) -> PromptVersionInfo:
    found = pv.tags or {}
    spec = _spec_from_version(pv)
    return PromptVersionInfo(
        name=pv.name,
        version=int(pv.version),
        spec=spec,
        content_hash=_checked_hash(pv, spec),
        git_commit=found.get(tags.GIT_COMMIT) or None,
        path=found.get(tags.SOURCE_PATH) or None,
        commit_message=pv.commit_message,
        aliases=tuple(pv.aliases or ()),
        created_ms=int(pv.creation_timestamp or 0),
        git_dirty={"true": True, "false": False}.get(str(found.get(tags.GIT_DIRTY, "")).lower()),
    )


class PromptStore(Store):
    """Read and write prompt versions of one workspace's registry."""

    # -- reading -----------------------------------------------------------------------------
    def exists(self, name: str) -> bool:
        return self._racing(f"cannot look up prompt {name}", lambda: self._client.get_prompt(name)) is not None

    def versions(self, name: str) -> list[PromptVersionInfo]:
        """All versions of ``name``, oldest first (empty when the prompt does not exist)."""
        if not self.exists(name):
            return []
        out: list[PromptVersion] = []
        token = None
        while True:
            page = self._racing(
                f"cannot list versions of prompt {name}",
                functools.partial(self._client.search_prompt_versions, name, max_results=1000, page_token=token),
            )
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
            with self._backend.call(f"cannot read prompt {name}/{info.version}"):
                pv = self._client.get_prompt_version(name, info.version)
            if pv is not None:
                out.update({alias: info.version for alias in pv.aliases or ()})
        return out

    def latest(self, name: str) -> PromptVersionInfo | None:
        versions = self.versions(name)
        return versions[-1] if versions else None

    def names(self) -> list[str]:
        with self._backend.call("cannot list prompts"):
            return sorted(p.name for p in self._client.search_prompts(max_results=1000))

    def find(self, ref: PromptRef | str) -> PromptVersionInfo | None:
        """The version ``ref`` points at; None when the prompt, version or alias does not exist."""
        ref = PromptRef.parse(ref) if isinstance(ref, str) else ref
        what = f"cannot look up prompt {ref}"
        if ref.alias:
            pv = self._backend.lookup(what, lambda: self._client.get_prompt_version_by_alias(ref.name, ref.alias))
        elif ref.version is not None:
            pv = self._backend.lookup(what, lambda: self._client.get_prompt_version(ref.name, ref.version))
        else:
            latest = self.latest(ref.name)
            if latest is None:
                return None
            # search results carry no aliases: read the version itself
            pv = self._backend.lookup(what, lambda: self._client.get_prompt_version(ref.name, latest.version))
        return _info(pv) if pv is not None else None

    def get(self, ref: PromptRef | str) -> PromptVersionInfo:
        """The version ``ref`` points at; NotFoundError naming the reference when there is none."""
        found = self.find(ref)
        if found is None:
            raise NotFoundError(f"prompt {ref} not found")
        return found

    def alias_version(self, name: str, alias: str) -> int | None:
        """The version ``name@alias`` points at; None when the prompt or the alias does not exist."""
        found = self.find(PromptRef(name, alias=alias))
        return found.version if found is not None else None

    # -- writing -----------------------------------------------------------------------------
    def _lock(self, name: str) -> FileLock:
        folder = self._backend.ws.home / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        return FileLock(str(folder / f"prompt-{name}.lock"), timeout=300)

    def push(self, spec: PromptSpec, git: GitInfo, *, dry_run: bool = False) -> PushResult:
        """Register ``spec`` as a new version unless its content equals the latest version's.

        "unchanged" reports the first version of the latest run of identical content, not the latest
        version itself: that may be a concurrent push's duplicate, about to be deleted (see :meth:`_converge`).
        """
        digest = spec.content_hash()
        with self._lock(spec.name):
            listed = self.versions(spec.name)
            if listed and listed[-1].content_hash == digest:
                return PushResult(spec.name, "unchanged", _run_start(listed, len(listed) - 1), git.path)
            if dry_run:
                return PushResult(spec.name, "would-register", None, git.path)
            version = self._register(spec, git, digest)
            version = self._converge(spec.name, digest, version)
        return PushResult(spec.name, "registered", version, git.path)

    def _register(self, spec: PromptSpec, git: GitInfo, digest: str) -> int:
        values = {
            tags.PROMPT_SPEC: spec.canonical_json(),
            tags.PROMPT_CONTENT_SHA256: digest,
            tags.SOURCE_PATH: git.path,
            tags.GIT_DIRTY: str(git.dirty).lower(),
        }
        if git.commit:
            values[tags.GIT_COMMIT] = git.commit
        message = git.subject or f"llmops prompts push {git.path}"
        pv = self._racing(
            f"cannot register prompt {spec.name}",
            lambda: self._client.register_prompt(
                name=spec.name,
                template=[m.model_dump() for m in spec.messages],
                commit_message=message,
                tags=values,
                model_config=spec.params.as_request() or None,
            ),
        )
        return int(pv.version)

    def _racing(self, what: str, fn: Callable[[], T]) -> T:
        """``fn()``, retried while a concurrent registration is half done; other failures raise RegistryError.

        MLflow registers a new prompt in steps (the registered model, then its prompt tag, then the
        version), so a concurrent caller can be refused with ``RESOURCE_ALREADY_EXISTS`` (the name or
        version number was just taken: nothing of ours was written) or read the name as "a model, not a
        prompt" for a moment. Both settle within milliseconds; a real conflict still fails, after a second.
        """
        from mlflow.exceptions import MlflowException

        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except MlflowException as exc:
                racing = exc.error_code == "RESOURCE_ALREADY_EXISTS" or _HALF_REGISTERED in str(exc)
                if not racing or attempt >= _REGISTER_ATTEMPTS:
                    self._backend.fail(what, exc)
                time.sleep(0.05 * attempt)
            except OSError as exc:
                self._backend.fail(what, exc)

    def _converge(self, name: str, digest: str, mine: int) -> int:
        """The version a push that has just registered ``mine`` reports; ``mine`` is deleted when it is a duplicate.

        The rule every push applies, wherever it runs: a version is a duplicate when the nearest version
        below it that is not deleted has the same content; a push deletes its own version if it is a
        duplicate, and reports the first version of the run of identical content that ends at its own.

        Why every push agrees, and none reports a version that is later deleted:

        * The listing taken after registering ``mine`` holds every version below it that is not deleted.
          MLflow's database store numbers a version max(every version ever registered, deleted ones
          included) + 1 in the transaction that inserts it, and (name, version) is the primary key: version
          N commits only after N-1 has committed, numbers are never reused, and a version below ``mine``
          that the listing lacks was deleted (MLflow deletes softly and hides deleted versions from
          searches). So no waiting or re-listing is needed.
        * The content of the nearest version that is not deleted below a version K never changes: a push
          deletes its version J only when the version below J has J's content, so the versions that saw J
          as their nearest now see one with the same content. Hence every push that looks at K, at any
          time, decides the same for K; and the first version R of a run (the version below R has other
          content, or there is none) is never deleted.
        * So each push reports its R, which stays; the pushes of one content racing after the same
          predecessor all report the same R; a version is deleted only when its content is kept in the R
          below it, and once every push has converged no two neighbouring versions have the same content.

        The rule deliberately ignores the latest version a push saw before registering (its "base"): bases
        differ between concurrent pushes (one that listed later has a higher base), so under "keep the
        lowest version above my base with my content" a push could delete the version another push had
        reported, once a push of other content came between their bases. Deleting versions by hand while
        pushes run is outside this contract (a push may report the version deleted).
        """
        listed = self.versions(name)
        at = next((i for i, v in enumerate(listed) if v.version == mine), None)
        if at is None or listed[at].content_hash != digest:
            raise RegistryError(
                f"prompt {name} v{mine} changed or disappeared right after this push registered it; push again",
                uri=self._backend.uri,
            )
        keep = _run_start(listed, at)
        if keep != mine:
            with self._backend.call(f"cannot delete duplicate prompt version {name}/{mine}"):
                self._client.delete_prompt_version(name, str(mine))
        return keep

    def set_alias(self, name: str, alias: str, version: int) -> None:
        check_alias(alias)
        with self._backend.call(f"cannot set alias {name}@{alias} -> v{version}"):
            self._client.set_prompt_alias(name, alias, version)

    def delete_alias(self, name: str, alias: str) -> None:
        with self._backend.call(f"cannot delete alias {name}@{alias}"):
            self._client.delete_prompt_alias(name, alias)
