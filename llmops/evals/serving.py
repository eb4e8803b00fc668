"""Serve a release for an eval run: an engine that has the release's adapter loaded.

Either an engine that already runs (``--endpoint``, or the route's engine in ``serving/gateway.yaml``)
or one started here for the run and stopped after it. Adapters are fetched from the registry
(sha256-verified) and loaded with vLLM's ``/v1/load_lora_adapter`` under ``NAME-vVERSION``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from llmops.adapters.registry import AdapterRegistry
from llmops.config.workspace import Workspace
from llmops.errors import ServerError
from llmops.releases import Release

if TYPE_CHECKING:
    from llmops.engine.vllm_server import EngineSettings
    from llmops.process import ManagedProcess


@dataclass
class EngineEndpoint:
    """A running vLLM OpenAI server: root URL and the name it serves the base model under."""

    url: str
    base_model_name: str

    @property
    def base_url(self) -> str:
        return f"{self.url.rstrip('/')}/v1"

    def model_for(self, release: Release) -> str:
        return release.adapter.lora_name if release.adapter else self.base_model_name

    def ensure_adapter(self, release: Release, adapters: AdapterRegistry) -> None:
        """Load the release's adapter into the engine unless it is already there."""
        if release.adapter is None:
            return
        name = release.adapter.lora_name
        with httpx.Client(base_url=self.url, timeout=120) as http:
            loaded = {m["id"] for m in http.get("/v1/models").json().get("data", [])}
            if name in loaded:
                return
            path = adapters.fetch(release.adapter)
            resp = http.post("/v1/load_lora_adapter", json={"lora_name": name, "lora_path": str(path)})
            if resp.status_code >= 400 and "already" not in resp.text:
                raise ServerError(f"engine {self.url} refused adapter {release.adapter.ref}: {resp.text[:300]}")


def attach(url: str) -> EngineEndpoint:
    """An engine that already runs at ``url`` (root or ``…/v1``)."""
    root = url.rstrip("/").removesuffix("/v1")
    try:
        models = httpx.get(f"{root}/v1/models", timeout=10).json()["data"]
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        raise ServerError(f"no OpenAI-compatible engine answers at {root}: {exc}") from exc
    base = next((m["id"] for m in models if not m.get("parent")), models[0]["id"] if models else "")
    return EngineEndpoint(root, base)


class PendingEngine:
    """A vLLM engine that was launched and may still be starting; :meth:`wait` returns it ready."""

    def __init__(self, proc: ManagedProcess, settings: EngineSettings) -> None:
        self._proc = proc
        self._settings = settings

    def wait(self) -> EngineEndpoint:
        from llmops.engine.vllm_server import wait_engine

        wait_engine(self._proc, self._settings)
        return EngineEndpoint(self._settings.url, self._settings.model_name)


@contextmanager
def launched_engine(ws: Workspace, base_model_path: str, *, log_path: Path | None = None) -> Iterator[PendingEngine]:
    """Launch a vLLM engine for ``base_model_path`` on a free loopback port without waiting; stop it on exit."""
    from llmops.engine.vllm_server import EngineSettings, launch_engine
    from llmops.process import free_port

    settings = EngineSettings(model=base_model_path, port=free_port(), served_model_name="base", max_loras=4)
    proc = launch_engine(settings, log_path or ws.logs_dir / "eval-engine.log")
    try:
        yield PendingEngine(proc, settings)
    finally:
        proc.stop()


@contextmanager
def local_engine(ws: Workspace, base_model_path: str, *, log_path: Path | None = None) -> Iterator[EngineEndpoint]:
    """Start a vLLM engine for ``base_model_path`` on a free loopback port; stop it on exit."""
    with launched_engine(ws, base_model_path, log_path=log_path) as pending:
        yield pending.wait()
