"""Engines for one run: attach to a running vLLM server, or launch one on a free loopback port.

Used by ``llmops eval run`` (a suite whose target is a release and names no endpoint) and by the demo
(launched early, so its 70-90 s start overlaps other work; :meth:`PendingEngine.wait` returns it ready).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from llmops.engine.client import EngineClient, HttpxTransport, auth_headers
from llmops.engine.keys import ENGINE_KEY_ENV, new_engine_key
from llmops.engine.vllm_server import EngineSettings, launch_engine, wait_engine
from llmops.errors import ServerError, UpstreamError
from llmops.process import ManagedProcess, free_port


@dataclass(frozen=True)
class EngineEndpoint:
    """A running vLLM OpenAI server: root URL, the name it serves the base model under, its API key."""

    url: str
    base_model_name: str
    api_key: str | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"{self.url.rstrip('/')}/v1"

    def model_for(self, lora_name: str | None) -> str:
        """The ``model`` to send for an adapter's engine name (None: the base model)."""
        return lora_name or self.base_model_name

    def client(self) -> EngineClient:
        return EngineClient(self.url, HttpxTransport(self.url, api_key=self.api_key))

    def ensure_adapter(self, lora_name: str, path: Path) -> None:
        """Load an adapter folder into the engine unless it already serves ``lora_name`` (blocking)."""
        try:
            asyncio.run(self.client().ensure_adapter(lora_name, path))
        except UpstreamError as exc:
            raise ServerError(f"engine {self.url} refused adapter {lora_name}: {exc}") from exc


def attach(url: str, api_key: str | None = None) -> EngineEndpoint:
    """An engine that already runs at ``url`` (root or ``…/v1``); its key: ``api_key``, else ``LLMOPS_ENGINE_KEY``."""
    root = url.rstrip("/").removesuffix("/v1")
    key = api_key or os.environ.get(ENGINE_KEY_ENV) or None
    try:
        resp = httpx.get(f"{root}/v1/models", timeout=10, headers=auth_headers(key))
        if resp.status_code == 401:
            raise ServerError(
                f"the engine at {root} refused the API key (none or wrong): set {ENGINE_KEY_ENV} "
                "(`llmops serve engine --name NAME` keeps it in .llmops/engines/NAME.key)"
            )
        models = resp.json()["data"]
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        raise ServerError(f"no OpenAI-compatible engine answers at {root}: {exc}") from exc
    base = next((m["id"] for m in models if not m.get("parent")), models[0]["id"] if models else "")
    return EngineEndpoint(root, base, key)


class PendingEngine:
    """A vLLM engine that was launched and may still be starting; :meth:`wait` returns it ready."""

    def __init__(self, proc: ManagedProcess, settings: EngineSettings) -> None:
        self._proc = proc
        self._settings = settings

    def wait(self) -> EngineEndpoint:
        wait_engine(self._proc, self._settings)
        return EngineEndpoint(self._settings.url, self._settings.model_name, self._settings.api_key)


@contextmanager
def launched_engine(base_model_path: str, log_path: Path) -> Iterator[PendingEngine]:
    """Launch a vLLM engine for ``base_model_path`` on a free loopback port, with a fresh API key, without
    waiting; stop it on exit."""
    settings = EngineSettings(
        model=base_model_path, port=free_port(), served_model_name="base", max_loras=4, api_key=new_engine_key()
    )
    proc = launch_engine(settings, log_path)
    try:
        yield PendingEngine(proc, settings)
    finally:
        proc.stop()


@contextmanager
def local_engine(base_model_path: str, log_path: Path) -> Iterator[EngineEndpoint]:
    """Start a vLLM engine for ``base_model_path`` on a free loopback port; stop it on exit."""
    with launched_engine(base_model_path, log_path) as pending:
        yield pending.wait()
