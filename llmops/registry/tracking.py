"""Connect to the MLflow registry of a workspace: an embedded SQLite file or an MLflow server.

The library behaves the same against both; only reachability is checked differently. An
unreachable server is reported at once (MLflow's own client would retry for minutes).
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

from llmops.config.workspace import Workspace
from llmops.errors import RegistryError
from llmops.process import http_ok

if TYPE_CHECKING:
    from mlflow import MlflowClient


def _quiet_mlflow() -> None:
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


def check_reachable(uri: str) -> None:
    """Raise RegistryError naming ``uri`` when the registry cannot be used."""
    scheme = urllib.parse.urlparse(uri).scheme
    if scheme in ("http", "https"):
        if not http_ok(uri.rstrip("/") + "/health", timeout=5):
            raise RegistryError("registry is unreachable (GET /health failed)", uri=uri)
        return
    if scheme == "sqlite":
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


def connect(ws: Workspace, *, check: bool = True) -> MlflowClient:
    """Point MLflow at the workspace registry and return a client for it."""
    _quiet_mlflow()
    if check:
        check_reachable(ws.tracking_uri)
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(ws.tracking_uri)
    mlflow.set_registry_uri(ws.tracking_uri)
    return MlflowClient(tracking_uri=ws.tracking_uri, registry_uri=ws.tracking_uri)


def ensure_experiment(client: MlflowClient, ws: Workspace, name: str) -> str:
    """The id of experiment ``name``, created when missing (artifacts under the workspace when embedded)."""
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    location = None
    if ws.is_embedded_registry:
        location = (ws.artifact_root / name).as_uri()
    try:
        return str(client.create_experiment(name, artifact_location=location))
    except MlflowException:
        # a concurrent caller created it first
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return str(exp.experiment_id)
