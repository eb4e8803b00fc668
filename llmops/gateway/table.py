"""The route table's values: resolved targets, routes and the immutable table the hot path reads.

A :class:`RouteTable` is never changed in place: :mod:`llmops.gateway.routes` builds a new one on every
refresh or weight change and swaps it in with one attribute assignment, so a request finishes on the
table it started with.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmops.config.gateway import TargetSpec
from llmops.gateway.prompting import CompiledPrompt
from llmops.gateway.resolution import Failure
from llmops.gateway.resolver import ResolvedAdapter
from llmops.gateway.routing import bounds, pick

#: header value when a target renders no prompt or serves no adapter (documented in serving/README.md)
_ABSENT = b"none"


@dataclass(frozen=True, slots=True)
class ServedTarget:
    """One resolved target: what a request routed to it is sent as."""

    route: str
    target: str
    engine: str
    model: str  # the name the engine serves it under: an adapter's lora name, or the base model
    prompt: CompiledPrompt | None
    adapter: ResolvedAdapter | None
    params: Mapping[str, Any]  # defaults: the prompt version's params, overridden by the target's
    headers: tuple[tuple[bytes, bytes], ...]  # response headers when the prompt is rendered
    headers_plain: tuple[tuple[bytes, bytes], ...]  # ... and when the request passes through

    @property
    def prompt_version(self) -> str | None:
        return self.prompt.label if self.prompt else None

    @property
    def adapter_version(self) -> str | None:
        return self.adapter.label if self.adapter else None

    def describe(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "engine": self.engine,
            "model": self.model,
            "prompt_version": self.prompt_version,
            "adapter_version": self.adapter_version,
            "params": dict(self.params),
        }


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    targets: tuple[ServedTarget, ...]
    weights: tuple[int, ...]
    upper: tuple[float, ...]
    shadow: ServedTarget | None = None
    shadow_sample: float = 1.0

    def choose(self, point: float) -> ServedTarget:
        return self.targets[pick(point, self.upper, self.weights)]

    def with_weights(self, weights: tuple[int, ...]) -> Route:
        return dataclasses.replace(self, weights=weights, upper=bounds(weights))

    def describe(self) -> dict[str, Any]:
        return {
            "route": self.name,
            "targets": [{**r.describe(), "weight": w} for r, w in zip(self.targets, self.weights, strict=True)],
            "shadow": {**self.shadow.describe(), "sample": self.shadow_sample} if self.shadow else None,
        }


@dataclass(frozen=True)
class RouteTable:
    routes: Mapping[str, Route] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)  # route -> why (targets of) its last resolution failed
    generation: int = 0
    resolved_at: float = 0.0
    #: route -> targets serving their last-known-good resolution (the last refresh failed for them)
    stale: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: what failed in the refresh that built this table (empty after a weight change): for metrics
    failures: tuple[Failure, ...] = ()

    @property
    def degraded(self) -> bool:
        """True when the last refresh failed for some target (it serves its last-known-good, or nothing)."""
        return bool(self.errors)


def _headers(route: str, target: str, prompt: str | None, adapter: str | None) -> tuple[tuple[bytes, bytes], ...]:
    return (
        (b"x-llmops-route", route.encode()),
        (b"x-llmops-target", target.encode()),
        (b"x-llmops-prompt-version", prompt.encode() if prompt else _ABSENT),
        (b"x-llmops-adapter-version", adapter.encode() if adapter else _ABSENT),
    )


def make_target(
    route: str,
    target: TargetSpec,
    engine: str,
    base_model: str,
    prompt: CompiledPrompt | None,
    adapter: ResolvedAdapter | None,
) -> ServedTarget:
    params = {**(prompt.defaults if prompt else {}), **target.params.as_request()}
    return ServedTarget(
        route=route,
        target=target.name,
        engine=engine,
        model=adapter.lora_name if adapter else base_model,
        prompt=prompt,
        adapter=adapter,
        params=params,
        headers=_headers(route, target.name, prompt.label if prompt else None, adapter.label if adapter else None),
        headers_plain=_headers(route, target.name, None, adapter.label if adapter else None),
    )
