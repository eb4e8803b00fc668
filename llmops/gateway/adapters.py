"""Adapter versions reach engines by name: loaded on route refresh, least-recently-routed unloaded.

On every route refresh the gateway hands each engine the adapters its routes need. For each one the
engine does not list in ``GET /v1/models`` (new, or lost in an engine restart), the gateway posts the
verified local copy to vLLM's ``/v1/load_lora_adapter`` under its lora name (``NAME-vVERSION``). When
an engine holds more than ``max_adapters``, the adapters no route needs any more are unloaded, least
recently routed first; those still routed stay, so a rollback to the previous version is instant.

vLLM itself keeps at most ``--max-loras`` adapters in a batch and ``--max-cpu-loras`` in memory, and
reloads evicted ones from their path on demand; this module keeps the engine's named set bounded.
The engine reads the adapter from the path the gateway sends, so both share a filesystem (the
embedded default: one machine).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from llmops.errors import UpstreamError
from llmops.gateway.resolver import ResolvedAdapter
from llmops.gateway.upstream import Upstream

log = logging.getLogger(__name__)


@dataclass
class EngineAdapters:
    """What the gateway knows of one engine's adapters: lora name -> last time a route needed it."""

    capacity: int
    last_routed: OrderedDict[str, float] = field(default_factory=OrderedDict)


@dataclass(frozen=True)
class SyncReport:
    engine: str
    loaded: tuple[str, ...]
    unloaded: tuple[str, ...]
    base_model: str | None


def served_models(listing: object) -> tuple[str | None, set[str]]:
    """The base model name and the adapter names in a ``GET /v1/models`` answer."""
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
    return base, adapters


class AdapterSync:
    """Keeps each engine's loaded adapters in step with the route table."""

    def __init__(self, upstreams: Mapping[str, Upstream], capacities: Mapping[str, int]) -> None:
        self._upstreams = upstreams
        self._engines = {name: EngineAdapters(capacities.get(name, 8)) for name in upstreams}

    def known(self, engine: str) -> list[str]:
        """Adapters the gateway loaded into ``engine``, least recently routed first."""
        return list(self._engines[engine].last_routed)

    async def sync(self, engine: str, needed: Iterable[ResolvedAdapter], *, load: bool = True) -> SyncReport:
        """Make ``engine`` hold every adapter in ``needed``; unload unneeded ones beyond capacity."""
        upstream = self._upstreams[engine]
        state = self._engines[engine]
        status, listing = await upstream.request_json("GET", "/v1/models")
        if status != 200:
            raise UpstreamError(f"GET /v1/models answered {status}", engine=engine)
        base, present = served_models(listing)
        # forget what the engine no longer holds (restarted, or unloaded by someone else)
        for name in [n for n in state.last_routed if n not in present]:
            del state.last_routed[name]
        now = time.monotonic()
        loaded = []
        wanted = {a.lora_name: a for a in needed}
        for name, adapter in wanted.items():
            if load and name not in present and adapter.path is not None:
                await self._load(upstream, adapter)
                loaded.append(name)
            state.last_routed[name] = now
            state.last_routed.move_to_end(name)
        unloaded = []
        for name in list(state.last_routed):
            if len(state.last_routed) <= state.capacity:
                break
            if name in wanted:
                continue
            await self._unload(upstream, name)
            del state.last_routed[name]
            unloaded.append(name)
        return SyncReport(engine, tuple(loaded), tuple(unloaded), base)

    async def _load(self, upstream: Upstream, adapter: ResolvedAdapter) -> None:
        payload = {"lora_name": adapter.lora_name, "lora_path": str(adapter.path)}
        status, answer = await upstream.request_json("POST", "/v1/load_lora_adapter", payload)
        if status == 200 or (status == 400 and "already been loaded" in str(answer)):
            log.info("engine %s: loaded adapter %s from %s", upstream.name, adapter.lora_name, adapter.path)
            return
        raise UpstreamError(f"cannot load adapter {adapter.label} ({status}): {answer}", engine=upstream.name)

    async def _unload(self, upstream: Upstream, name: str) -> None:
        status, answer = await upstream.request_json("POST", "/v1/unload_lora_adapter", {"lora_name": name})
        if status not in (200, 404):
            raise UpstreamError(f"cannot unload adapter {name} ({status}): {answer}", engine=upstream.name)
        log.info("engine %s: unloaded adapter %s (least recently routed)", upstream.name, name)
