"""Release pointers: route → stage → release, the one registry write that decides what a route serves.

A route's releases are versions of registered model ``ROUTE.release``; each version's tags hold one
exact :class:`~llmops.release.Release` (canonical JSON, its key, readable copies of its refs) and the
eval record ids that allowed it; its source is a ``release.json`` run artifact. The stage aliases
``production`` and ``canary`` on that model are the *commit point* of a promotion: moving one alias
is a single registry write, so a reader (every gateway replica's refresher) sees the old release or
the new one, never a mix. Pointer history is the audit log's completed moves of that route and stage.
The same model's tags hold the route's state beside its pointers: weights and the rollout that owns them
(:mod:`llmops.registry.routestate`).

MLflow keeps registered models and prompts in one namespace, so ``ROUTE.release`` may be someone else's
model: every pointer version must carry ``llmops.kind=release`` (reads refuse one that does not), and
``record`` refuses to add versions to a model of another kind.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmops.errors import LlmopsError, NotFoundError, RegistryError
from llmops.refs import check_alias
from llmops.registry import tags
from llmops.registry.audit import AuditRecord, AuditStore
from llmops.registry.backend import Backend
from llmops.release import Release

if TYPE_CHECKING:
    from mlflow import MlflowClient

RELEASES_EXPERIMENT = "llmops-releases"
#: audit outcomes after which a stage pointed at the record's ``to_version``
SETTLED_MOVES = ("moved", "rolled-back")


def pointer_model(route: str) -> str:
    return f"{route}.release"


def release_tags(release: Release) -> dict[str, str]:
    """The tags that record ``release`` (an exact one) on a pointer version or an eval record."""
    values = {
        tags.RELEASE: json.dumps(release.canonical(), sort_keys=True),
        tags.RELEASE_KEY: release.key,
        tags.RELEASE_BASE_MODEL: release.base_model,
    }
    if release.adapter is not None:
        values[tags.RELEASE_ADAPTER] = str(release.adapter)
    if release.prompt is not None:
        values[tags.RELEASE_PROMPT] = str(release.prompt)
    return values


def release_from_tags(found: dict[str, str], where: str) -> Release:
    """The release recorded by :func:`release_tags`; LlmopsError naming ``where`` when it is missing."""
    raw = found.get(tags.RELEASE)
    if not raw:
        raise LlmopsError(f"{where} records no release (tag {tags.RELEASE}); it was written by another tool")
    return Release.from_canonical(json.loads(raw))


def not_pointer(route: str, kind: str | None) -> RegistryError:
    """The error for a ``ROUTE.release`` name that holds something else (``kind``: its llmops kind, if any)."""
    what = {"prompt": "a prompt", None: "a registered model llmops did not create"}.get(kind, f"an llmops {kind}")
    return RegistryError(
        f"registry name {pointer_model(route)} holds {what}, not the release pointers of route {route}: "
        "rename that model or the route"
    )


def ensure_pointer_model(backend: Backend, route: str) -> None:
    """Create ``ROUTE.release`` (``llmops.kind=release``) when missing; RegistryError when the name holds
    something else (a user's model or a prompt). Release versions and route state both live on it."""
    from mlflow.exceptions import MlflowException

    name = pointer_model(route)
    try:
        backend.client.create_registered_model(
            name, tags={tags.KIND: tags.KIND_RELEASE}, description=f"releases of route {route}"
        )
        return
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            backend.fail(f"cannot create the release pointers of route {route}", exc)
    except OSError as exc:  # the transport (connection refused, timeout)
        backend.fail(f"cannot create the release pointers of route {route}", exc)
    with backend.call(f"cannot look up {name}"):
        is_prompt = backend.client.get_prompt(name) is not None
    if is_prompt:
        raise not_pointer(route, "prompt")
    model = backend.lookup(f"cannot look up {name}", lambda: backend.client.get_registered_model(name))
    kind = None if model is None else (model.tags or {}).get(tags.KIND)
    if kind != tags.KIND_RELEASE:
        raise not_pointer(route, kind)


@dataclass(frozen=True)
class RecordedRelease:
    """One recorded release of a route: the pointer version number, the release, the evals that allowed it."""

    route: str
    version: int
    release: Release
    eval_records: tuple[str, ...]


@dataclass(frozen=True)
class PointerMove:
    """One completed move of a stage pointer, from the audit log."""

    stage: str
    from_version: int | None
    to_version: int
    record: AuditRecord


def _recorded(route: str, mv: Any) -> RecordedRelease:
    found = dict(mv.tags or {})
    if found.get(tags.KIND) != tags.KIND_RELEASE:
        raise not_pointer(route, found.get(tags.KIND))
    return RecordedRelease(
        route=route,
        version=int(mv.version),
        release=release_from_tags(found, f"release v{mv.version} of route {route}"),
        eval_records=tuple(x for x in found.get(tags.RELEASE_EVAL_RECORDS, "").split(",") if x),
    )


class ReleasePointers:
    """Record releases of routes, point stages at them, read the pointers and their history."""

    def __init__(self, backend: Backend, audit: AuditStore) -> None:
        self._backend = backend
        self._audit = audit

    @property
    def _client(self) -> MlflowClient:
        return self._backend.client

    def record(self, route: str, release: Release, eval_records: list[str]) -> RecordedRelease:
        """The version of ``route``'s releases for ``release``: reused when the same key exists, else created."""
        name = pointer_model(route)
        ensure_pointer_model(self._backend, route)
        with self._backend.call(f"cannot list the releases of route {route}"):
            for mv in self._client.search_model_versions(f"name = '{name}'"):
                if (mv.tags or {}).get(tags.RELEASE_KEY) == release.key:
                    return _recorded(route, mv)
        exp = self._backend.ensure_experiment(RELEASES_EXPERIMENT)
        values = {**release_tags(release), tags.RELEASE_EVAL_RECORDS: ",".join(eval_records)}
        label = str(release.adapter) if release.adapter else "base"
        with self._backend.call(f"cannot record a release of route {route}"):
            run = self._client.create_run(
                exp, run_name=f"{route}:{label}", tags={tags.KIND: tags.KIND_RELEASE, **values}
            )
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "release.json"
                path.write_text(json.dumps({"route": route, **values}, indent=2, sort_keys=True))
                self._client.log_artifact(run.info.run_id, str(path))
            self._client.set_terminated(run.info.run_id)
            mv = self._client.create_model_version(
                name,
                f"{run.info.artifact_uri}/release.json",
                run_id=run.info.run_id,
                tags={tags.KIND: tags.KIND_RELEASE, **values},
            )
        return _recorded(route, mv)

    def at_stage(self, route: str, stage: str) -> RecordedRelease | None:
        """The release ``route`` serves at ``stage``; None when no release was ever put there."""
        alias = check_alias(stage)
        mv = self._backend.lookup(
            f"cannot read the {stage} release of route {route}",
            lambda: self._client.get_model_version_by_alias(pointer_model(route), alias),
        )
        return None if mv is None else _recorded(route, mv)

    def get(self, route: str, version: int) -> RecordedRelease:
        mv = self._backend.lookup(
            f"cannot read release v{version} of route {route}",
            lambda: self._client.get_model_version(pointer_model(route), str(version)),
        )
        if mv is None:
            raise NotFoundError(f"route {route} has no release v{version}")
        return _recorded(route, mv)

    def set_stage(self, route: str, stage: str, version: int | None) -> None:
        """Point ``route``'s ``stage`` at ``version`` (None removes the stage)."""
        name, alias = pointer_model(route), check_alias(stage)
        with self._backend.call(f"cannot move {route}@{stage}"):
            if version is None:
                self._client.delete_registered_model_alias(name, alias)
            else:
                self._client.set_registered_model_alias(name, alias, str(version))

    def history(self, route: str, stage: str, limit: int = 1000) -> list[PointerMove]:
        """Completed moves of ``route@stage``, newest first (from the audit log)."""
        return [
            PointerMove(stage, int(r.from_version) if r.from_version else None, int(r.to_version), r)
            for r in self._audit.records(route, limit=limit)
            if r.kind == "release" and r.alias == stage and r.outcome in SETTLED_MOVES and r.to_version
        ]
