"""Adapter versions reach engines by name: loaded on route refresh, least-recently-routed unloaded.

On every route refresh the gateway hands each engine the adapters its routes need. For each one the
engine does not list in ``GET /v1/models`` (new, or lost in an engine restart), the gateway posts the
verified local copy to vLLM's ``/v1/load_lora_adapter`` under its lora name (``NAME-vVERSION-SHA12``, the
first 12 hex digits of its sha256, so a listed name vouches for the exact weights, see
:func:`llmops.registry.adapters.lora_name`; the engine's API key keeps others from loading any). When
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

from llmops.engine.client import EngineClient
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


class AdapterSync:
    """Keeps each engine's loaded adapters in step with the route table."""

    def __init__(self, upstreams: Mapping[str, Upstream], capacities: Mapping[str, int]) -> None:
        self._clients = {name: EngineClient(name, upstream) for name, upstream in upstreams.items()}
        self._engines = {name: EngineAdapters(capacities.get(name, 8)) for name in upstreams}

    def known(self, engine: str) -> list[str]:
        """Adapters the gateway loaded into ``engine``, least recently routed first."""
        return list(self._engines[engine].last_routed)

    async def sync(self, engine: str, needed: Iterable[ResolvedAdapter], *, load: bool = True) -> SyncReport:
        """Make ``engine`` hold every adapter in ``needed``; unload unneeded ones beyond capacity."""
        client = self._clients[engine]
        state = self._engines[engine]
        served = await client.models()
        # forget what the engine no longer holds (restarted, or unloaded by someone else)
        for name in [n for n in state.last_routed if n not in served.adapters]:
            del state.last_routed[name]
        now = time.monotonic()
        loaded = []
        wanted = {a.lora_name: a for a in needed}
        for name, adapter in wanted.items():
            if load and name not in served.adapters and adapter.path is not None:
                await client.load_adapter(name, adapter.path)
                log.info("engine %s: loaded adapter %s from %s", engine, name, adapter.path)
                loaded.append(name)
            state.last_routed[name] = now
            state.last_routed.move_to_end(name)
        unloaded = []
        for name in list(state.last_routed):
            if len(state.last_routed) <= state.capacity:
                break
            if name in wanted:
                continue
            await client.unload_adapter(name)
            log.info("engine %s: unloaded adapter %s (least recently routed)", engine, name)
            del state.last_routed[name]
            unloaded.append(name)
        return SyncReport(engine, tuple(loaded), tuple(unloaded), served.base)
