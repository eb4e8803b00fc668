"""``llmops registry serve``: the MLflow tracking server + UI over a database backend store.

The backend store is the workspace's SQLite file by default, or any database URI MLflow accepts
(``postgresql://user:pass@host:5432/db``, ``mysql://…``, ``sqlite:///…``) for a registry that several
machines share. The server serves artifacts (``--serve-artifacts``) from ``--artifacts-destination``
(default: the workspace's artifact folder; an ``s3://`` URI works too), so clients that talk to it over
HTTP need no access to the artifact store. It listens on 127.0.0.1 unless configured otherwise. A fresh
store migrates on the first start (~30 s on SQLite here, a few seconds on PostgreSQL), hence the generous
timeout. Credentials in a backend URI never appear in messages: see :func:`llmops.redact.redact`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from llmops.config.workspace import Workspace
from llmops.errors import RegistryError, ServerError
from llmops.process import ManagedProcess, http_ok, port_in_use
from llmops.redact import redact

#: database URI schemes MLflow's SQLAlchemy store accepts (``+driver`` suffixes allowed)
DB_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def is_database_uri(uri: str) -> bool:
    """True when ``uri`` names a database MLflow can use as a backend store (not an HTTP server)."""
    scheme = uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""
    return scheme in DB_SCHEMES


#: The SQLAlchemy pool of the server's store. MLflow's default (5 + 10 overflow) is smaller than the number of
#: requests its server handles at once (40: anyio's thread pool, which runs the Flask app): under a burst of
#: concurrent operators (32 prompt pushes) requests waited 30 s for a connection and failed with "QueuePool
#: limit of size 5 overflow 10 reached" (and when that failed a new prompt's first version, MLflow's client
#: deleted the prompt under the pushes racing it: "FOREIGN KEY constraint failed"). With the pool as large
#: as the thread pool, requests queue on the database instead. Values the user set in the environment win.
POOL_ENV = {"MLFLOW_SQLALCHEMYSTORE_POOL_SIZE": "20", "MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW": "30"}


def server_argv(backend_uri: str, artifacts: Path | str, host: str, port: int, workers: int = 1) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        backend_uri,
        "--artifacts-destination",
        str(artifacts),
        "--serve-artifacts",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def _backend(ws: Workspace, backend_store_uri: str | None) -> str:
    if backend_store_uri is None:
        if not is_database_uri(ws.tracking_uri):
            raise RegistryError(
                "registry serve needs a database backend store; this workspace points at an MLflow server: "
                "pass --backend-store-uri postgresql://… (or sqlite:///…)",
                uri=redact(ws.tracking_uri),
            )
        return ws.tracking_uri
    if not is_database_uri(backend_store_uri):
        raise RegistryError(
            f"--backend-store-uri must be a database URI ({', '.join(s + '://' for s in DB_SCHEMES)}), "
            f"not {redact(backend_store_uri)}"
        )
    return backend_store_uri


def start_server(
    ws: Workspace,
    *,
    host: str | None = None,
    port: int | None = None,
    backend_store_uri: str | None = None,
    artifacts_destination: Path | str | None = None,
    log_path: Path | None = None,
    timeout: float = 180.0,
) -> tuple[ManagedProcess, str]:
    """Start the MLflow server for ``ws``; return the process and its URL once /health answers.

    ``backend_store_uri`` defaults to the workspace's own database (its SQLite file);
    ``artifacts_destination`` to the workspace's artifact folder.
    """
    backend = _backend(ws, backend_store_uri)
    host = host or ws.settings.registry.server.host
    port = port or ws.settings.registry.server.port
    url = f"http://{host}:{port}"
    if port_in_use(host, port):
        raise RegistryError(f"something already answers on {url}; choose another --port")
    ws.home.mkdir(parents=True, exist_ok=True)
    artifacts: Path | str = artifacts_destination or ws.artifact_root
    if isinstance(artifacts, Path) or "://" not in artifacts:
        artifacts = Path(artifacts).resolve()
        artifacts.mkdir(parents=True, exist_ok=True)
    log = log_path or ws.logs_dir / "mlflow-server.log"
    env = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}

    proc = ManagedProcess(
        "MLflow server",
        server_argv(backend, artifacts, host, port),
        log,
        env={**POOL_ENV, **os.environ, **env},  # the user's pool settings win over ours
        cwd=ws.home,
    ).start()
    try:
        proc.wait_healthy(lambda: http_ok(url + "/health"), timeout=timeout)
    except ServerError as exc:  # the log tail may quote the backend URI
        raise ServerError(redact(str(exc).removesuffix(f" (log: {log})")), log_path=log) from None
    return proc, url
