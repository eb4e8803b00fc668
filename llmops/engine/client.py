"""The one client of a running vLLM OpenAI server's control plane: served models, adapter load/unload.

The gateway's adapter sync, ``llmops eval run`` and the demo all load adapters through
:class:`EngineClient`, so "is it already loaded" and "what is the base model" mean the same
everywhere. It speaks through any :class:`JsonTransport`: the gateway passes its pooled upstream
client; others use :class:`HttpxTransport`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from llmops.errors import UpstreamError, UpstreamTimeoutError


class JsonTransport(Protocol):
    """A small control-plane call: status and decoded JSON (or text)."""

    async def request_json(self, method: str, path: str, payload: Any | None = None) -> tuple[int, Any]: ...


def auth_headers(api_key: str | None) -> dict[str, str]:
    """The header an engine started with an API key demands (none without a key)."""
    return {"authorization": f"Bearer {api_key}"} if api_key else {}


class HttpxTransport:
    """A :class:`JsonTransport` over a short-lived httpx client (for callers without a pooled upstream);
    sends ``Authorization: Bearer API_KEY`` when the engine has a key."""

    def __init__(self, url: str, *, timeout_s: float = 120.0, api_key: str | None = None) -> None:
        self.url = url.rstrip("/").removesuffix("/v1")
        self._timeout_s = timeout_s
        self._headers = auth_headers(api_key)

    async def request_json(self, method: str, path: str, payload: Any | None = None) -> tuple[int, Any]:
        try:
            async with httpx.AsyncClient(base_url=self.url, timeout=self._timeout_s, headers=self._headers) as http:
                resp = await http.request(method, path, json=payload)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeoutError(f"{method} {path} timed out", engine=self.url) from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(f"{method} {path} failed: {exc}", engine=self.url) from exc
        try:
            return resp.status_code, resp.json()
        except ValueError:
            return resp.status_code, resp.text


@dataclass(frozen=True)
class ServedModels:
    """What ``GET /v1/models`` says an engine serves: the base model's name and the adapters' names."""

    base: str | None
    adapters: frozenset[str] = field(default_factory=frozenset)


def served_models(listing: object) -> ServedModels:
    """Parse a ``GET /v1/models`` answer (adapters are the cards with a ``parent``)."""
    data = listing.get("data", []) if isinstance(listing, dict) else []
    base = None
    adapters = set()
    for card in data:
        if not isinstance(card, dict) or not isinstance(card.get("id"), str):
            continue
        if card.get("parent"):
            adapters.add(card["id"])
        elif base is None:
            base = card["id"]
    return ServedModels(base, frozenset(adapters))


class EngineClient:
    """Control-plane calls to one engine named ``name`` (used in error messages)."""

    def __init__(self, name: str, transport: JsonTransport) -> None:
        self.name = name
        self._transport = transport

    async def models(self) -> ServedModels:
        status, listing = await self._transport.request_json("GET", "/v1/models")
        if status == 401:
            raise UpstreamError(
                "GET /v1/models answered 401: the engine's API key is missing or wrong", engine=self.name
            )
        if status != 200:
            raise UpstreamError(f"GET /v1/models answered {status}", engine=self.name)
        return served_models(listing)

    async def load_adapter(self, lora_name: str, path: Path) -> None:
        """Load the adapter folder ``path`` under ``lora_name`` (an adapter already loaded under it is fine)."""
        payload = {"lora_name": lora_name, "lora_path": str(path)}
        status, answer = await self._transport.request_json("POST", "/v1/load_lora_adapter", payload)
        if status == 200 or (status == 400 and "already been loaded" in str(answer)):
            return
        raise UpstreamError(f"cannot load adapter {lora_name} ({status}): {str(answer)[:300]}", engine=self.name)

    async def unload_adapter(self, lora_name: str) -> None:
        """Unload ``lora_name`` (one the engine does not hold is fine)."""
        status, answer = await self._transport.request_json("POST", "/v1/unload_lora_adapter", {"lora_name": lora_name})
        if status not in (200, 404):
            raise UpstreamError(f"cannot unload adapter {lora_name} ({status}): {str(answer)[:300]}", engine=self.name)

    async def ensure_adapter(self, lora_name: str, path: Path) -> bool:
        """Load ``lora_name`` unless the engine already serves it; True when it was loaded now."""
        if lora_name in (await self.models()).adapters:
            return False
        await self.load_adapter(lora_name, path)
        return True
