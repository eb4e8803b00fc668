"""Release pointers: the one registry write that decides what a route serves at a stage.

A route's releases are versions of registered model ``ROUTE.release``; each version's tags name an
exact adapter version and prompt version (plus base model and params), and its source is a
``release.json`` run artifact. The stage aliases ``production`` and ``canary`` on that model are the
*commit point* of a promotion: moving one alias is a single registry write, so a reader (the
gateway's refresher) sees the old release or the new one, never a mix of the two. The adapter and
prompt aliases are moved too, as mirrors for people and tools that read them directly.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmops.config.workspace import Workspace
from llmops.refs import check_alias
from llmops.registry.tracking import ensure_experiment
from llmops.releases import TAG_ADAPTER, TAG_BASE, TAG_KEY, TAG_PROMPT, Release

if TYPE_CHECKING:
    from mlflow import MlflowClient

RELEASES_EXPERIMENT = "llmops-releases"
TAG_KIND = "llmops.kind"
TAG_PARAMS = "llmops.release.params"
TAG_EVALS = "llmops.release.eval_records"


def pointer_model(route: str) -> str:
    return f"{route}.release"


@dataclass(frozen=True)
class ReleaseVersion:
    """One recorded release of a route: exact adapter and prompt versions."""

    route: str
    version: int
    adapter: str  # NAME/VERSION or "none"
    prompt: str  # NAME/VERSION or "none"
    base_model: str
    params: dict[str, Any]
    key: str
    eval_records: tuple[str, ...]


def _version(route: str, mv: Any) -> ReleaseVersion:
    tags = dict(mv.tags or {})
    return ReleaseVersion(
        route=route,
        version=int(mv.version),
        adapter=tags.get(TAG_ADAPTER, "none"),
        prompt=tags.get(TAG_PROMPT, "none"),
        base_model=tags.get(TAG_BASE, ""),
        params=json.loads(tags.get(TAG_PARAMS) or "{}"),
        key=tags.get(TAG_KEY, ""),
        eval_records=tuple(x for x in tags.get(TAG_EVALS, "").split(",") if x),
    )


class ReleaseStore:
    def __init__(self, client: MlflowClient, ws: Workspace) -> None:
        self._client = client
        self._ws = ws

    def record(self, route: str, release: Release, eval_records: list[str]) -> ReleaseVersion:
        """The version of ``route``'s releases for ``release``: reused when the same key exists, else created."""
        from mlflow.exceptions import MlflowException

        name = pointer_model(route)
        try:
            self._client.create_registered_model(
                name, tags={TAG_KIND: "release"}, description=f"releases of route {route}"
            )
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        for mv in self._client.search_model_versions(f"name = '{name}'"):
            if (mv.tags or {}).get(TAG_KEY) == release.key():
                return _version(route, mv)
        exp = ensure_experiment(self._client, self._ws, RELEASES_EXPERIMENT)
        tags = {
            **release.tags(),
            TAG_PARAMS: json.dumps(release.params, sort_keys=True),
            TAG_EVALS: ",".join(eval_records),
        }
        run = self._client.create_run(
            exp, run_name=f"{route}:{release.adapter_ref}", tags={TAG_KIND: "release", **tags}
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "release.json"
            path.write_text(json.dumps({"route": route, **tags}, indent=2, sort_keys=True))
            self._client.log_artifact(run.info.run_id, str(path))
        self._client.set_terminated(run.info.run_id)
        mv = self._client.create_model_version(
            name, f"{run.info.artifact_uri}/release.json", run_id=run.info.run_id, tags={TAG_KIND: "release", **tags}
        )
        return _version(route, mv)

    def at_stage(self, route: str, stage: str) -> ReleaseVersion | None:
        from mlflow.exceptions import MlflowException

        try:
            mv = self._client.get_model_version_by_alias(pointer_model(route), check_alias(stage))
        except MlflowException:
            return None
        return _version(route, mv)

    def get(self, route: str, version: int) -> ReleaseVersion:
        return _version(route, self._client.get_model_version(pointer_model(route), str(version)))

    def set_stage(self, route: str, stage: str, version: int | None) -> None:
        """Point ``route``'s ``stage`` at ``version`` (None removes the stage)."""
        name = pointer_model(route)
        if version is None:
            self._client.delete_registered_model_alias(name, check_alias(stage))
        else:
            self._client.set_registered_model_alias(name, check_alias(stage), str(version))
