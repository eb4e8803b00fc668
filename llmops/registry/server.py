"""``llmops registry serve``: the MLflow tracking server + UI over the workspace's SQLite store.

The server serves artifacts (``--serve-artifacts``), so clients that talk to it over HTTP need no
access to the artifact folder. It listens on 127.0.0.1 unless configured otherwise. A fresh
SQLite store needs ~30 s of migrations on the first start here, hence the generous timeout.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from llmops.config.workspace import Workspace
from llmops.errors import RegistryError
from llmops.process import ManagedProcess, http_ok, port_in_use


def server_argv(backend_uri: str, artifacts: Path, host: str, port: int, workers: int = 1) -> list[str]:
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


def start_server(
    ws: Workspace,
    *,
    host: str | None = None,
    port: int | None = None,
    log_path: Path | None = None,
    timeout: float = 180.0,
) -> tuple[ManagedProcess, str]:
    """Start the MLflow server for ``ws``; return the process and its URL once /health answers."""
    if not ws.is_embedded_registry:
        raise RegistryError(
            "registry serve runs the embedded SQLite registry; this workspace points at another registry",
            uri=ws.tracking_uri,
        )
    host = host or ws.settings.registry.server.host
    port = port or ws.settings.registry.server.port
    url = f"http://{host}:{port}"
    if port_in_use(host, port):
        raise RegistryError(f"something already answers on {url}; choose another --port")
    ws.home.mkdir(parents=True, exist_ok=True)
    ws.artifact_root.mkdir(parents=True, exist_ok=True)
    log = log_path or ws.logs_dir / "mlflow-server.log"
    env = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}

    proc = ManagedProcess(
        "MLflow server",
        server_argv(ws.tracking_uri, ws.artifact_root, host, port),
        log,
        env={**os.environ, **env},
        cwd=ws.home,
    ).start()
    proc.wait_healthy(lambda: http_ok(url + "/health"), timeout=timeout)
    return proc, url
