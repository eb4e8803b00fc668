"""The connection every registry store shares: one MLflow client, explicit URI, one error policy.

Every call goes to the registry named by the workspace's tracking URI, explicitly; nothing sets
MLflow's process-global URI or writes ``os.environ``. A lookup of something that does not exist is
``None``; any other failure (unreachable server, a locked SQLite file, a refused write) raises
:class:`~llmops.errors.RegistryError`, so a registry failure is never reported as "not found". Its
message is the gist of the driver's error (no SQL statement or parameters; no credentials, which
RegistryError redacts from the message and the URI).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import urllib.parse
from collections.abc import Callable, Iterator
from functools import cached_property
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from llmops.config.workspace import Workspace
from llmops.errors import RegistryError
from llmops.process import http_ok

if TYPE_CHECKING:
    from mlflow import MlflowClient

T = TypeVar("T")
_SQL_DETAIL = re.compile(r"\[(?:SQL|parameters): ")
_BACKGROUND = re.compile(r"\(Background on this error at: [^)]*\)")

#: MLflow settings for a CLI process: fail fast on an unreachable server, no telemetry, quiet logs.
MLFLOW_PROCESS_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
}


def check_reachable(uri: str) -> None:
    """Raise RegistryError naming ``uri`` when the registry cannot be used."""
    scheme = urllib.parse.urlparse(uri).scheme
    if scheme in ("http", "https"):
        if not http_ok(uri.rstrip("/") + "/health", timeout=5):
            raise RegistryError("registry is unreachable (GET /health failed)", uri=uri)
        return
    if scheme == "sqlite":
        if find_spec("sqlalchemy") is None:  # a slim install (mlflow-skinny) talks to MLflow servers only
            raise RegistryError(
                "the embedded SQLite registry needs the registry extra (pip install 'llmops[registry]'); "
                "or set MLFLOW_TRACKING_URI to an MLflow server (http://…)",
                uri=uri,
            )
        path = Path(uri.removeprefix("sqlite:///"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RegistryError(f"cannot create the registry folder: {exc}", uri=uri) from exc
        if not os.access(path.parent, os.W_OK):
            raise RegistryError("registry folder is not writable", uri=uri)
        return
    if scheme in ("postgresql", "mysql", "mssql", "databricks", "file", ""):
        return
    raise RegistryError(f"unsupported registry URI scheme {scheme!r}", uri=uri)


def brief(message: str, limit: int = 500) -> str:
    """The gist of a driver error: without SQLAlchemy's ``[SQL: …]``/``[parameters: …]`` blocks and its
    "Background on this error" link, bounded to ``limit`` characters (credentials go in RegistryError)."""
    cut = _SQL_DETAIL.search(message)
    text = (message[: cut.start()] if cut else message).strip()
    text = _BACKGROUND.sub("", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_not_found(exc: BaseException) -> bool:
    """True when an MLflow error says the object does not exist (as opposed to a failure)."""
    code = getattr(exc, "error_code", "")
    if code == "RESOURCE_DOES_NOT_EXIST":
        return True
    # a missing alias is reported as an invalid parameter: "Registered model alias X not found."
    return code == "INVALID_PARAMETER_VALUE" and "alias" in str(exc) and "not found" in str(exc)


class Backend:
    """The MLflow client of one registry plus where new artifacts go; shared by the stores."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.uri = ws.tracking_uri

    @cached_property
    def client(self) -> MlflowClient:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def fail(self, what: str, exc: BaseException) -> NoReturn:
        message = brief(getattr(exc, "message", None) or str(exc))
        raise RegistryError(f"{what}: {message}", uri=self.uri) from exc

    @contextlib.contextmanager
    def call(self, what: str) -> Iterator[None]:
        """Turn any MLflow or transport failure inside the block into RegistryError(``what``)."""
        from mlflow.exceptions import MlflowException

        try:
            yield
        except (MlflowException, OSError) as exc:
            self.fail(what, exc)

    def lookup(self, what: str, fn: Callable[[], T]) -> T | None:
        """``fn()``, or None when MLflow says the object does not exist; other failures raise RegistryError."""
        from mlflow.exceptions import MlflowException

        try:
            return fn()
        except MlflowException as exc:
            if is_not_found(exc):
                return None
            self.fail(what, exc)
        except OSError as exc:
            self.fail(what, exc)

    def ensure_experiment(self, name: str) -> str:
        """The id of experiment ``name``, created when missing (artifacts under the workspace when embedded)."""
        from mlflow.exceptions import MlflowException

        with self.call(f"cannot look up experiment {name}"):
            exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return str(exp.experiment_id)
        location = (self.ws.artifact_root / name).as_uri() if self.ws.is_embedded_registry else None
        try:
            return str(self.client.create_experiment(name, artifact_location=location))
        except MlflowException as exc:  # a concurrent caller created it first
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                self.fail(f"cannot create experiment {name}", exc)
            return str(exp.experiment_id)

    def experiment_id(self, name: str) -> str | None:
        """The id of experiment ``name``, None when it does not exist yet."""
        with self.call(f"cannot look up experiment {name}"):
            exp = self.client.get_experiment_by_name(name)
        return None if exp is None else str(exp.experiment_id)


class Store:
    """Base of the typed stores: the shared backend and its client."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    @property
    def _client(self) -> MlflowClient:
        return self._backend.client

    def artifact_json(self, run_id: str, artifact: str) -> Any | None:
        """The JSON artifact ``artifact`` of run ``run_id`` (an eval record's or a monitoring record's
        ``report.json``); None when the run or the file does not exist."""
        import mlflow.artifacts

        listed = self._backend.lookup(
            f"cannot list the artifacts of run {run_id}", lambda: self._client.list_artifacts(run_id)
        )
        if listed is None or artifact not in {a.path for a in listed}:
            return None
        with tempfile.TemporaryDirectory() as tmp:
            path = self._backend.lookup(
                f"cannot download {artifact} of run {run_id}",
                lambda: mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path=artifact, dst_path=tmp, tracking_uri=self._backend.uri
                ),
            )
            if path is None or not Path(path).is_file():
                return None
            return json.loads(Path(path).read_text(encoding="utf-8"))
