"""One resolution pass: every target of every route resolved on its own, failures kept apart.

:func:`resolve_targets` (blocking: registry round trips, adapter downloads; the refresher runs it in a
worker thread) returns, per route and target, a :class:`Pick` (the exact prompt and adapter versions
the target serves now) or a :class:`Failure` (why it could not be resolved this time). One target's
failure never touches another target: the route table keeps the failed target's last-known-good
resolution (:mod:`llmops.gateway.routes`).

Which release a target serves follows :func:`llmops.releases.target_release`: a target's configured
references are used only when the registry *answered* that no release is recorded at its stage
(``None``); a registry failure while reading the stage is a :class:`Failure`, never a fallback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from llmops.config.gateway import EngineSpec, RouteSpec, TargetSpec, engine_of
from llmops.errors import IntegrityError, LlmopsError, NotFoundError, RegistryError, UpstreamError
from llmops.gateway.resolver import ResolvedAdapter, ResolvedPrompt, RouteResolver
from llmops.redact import redact
from llmops.releases import target_release

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Pick:
    """What one target serves after this pass."""

    prompt: ResolvedPrompt | None
    adapter: ResolvedAdapter | None


@dataclass(frozen=True, slots=True)
class Failure:
    """A target that could not be (re)resolved in one pass; ``message`` is redacted (admin eyes only)."""

    route: str
    target: str
    kind: str  # registry | not_found | integrity | engine | error (the metric's ``kind`` label)
    message: str


def failure_kind(exc: BaseException) -> str:
    if isinstance(exc, NotFoundError):
        return "not_found"
    if isinstance(exc, RegistryError):
        return "registry"
    if isinstance(exc, IntegrityError):
        return "integrity"
    if isinstance(exc, UpstreamError):
        return "engine"
    return "error"


def failure_of(route: str, target: str, exc: BaseException) -> Failure:
    """The :class:`Failure` for ``exc`` (logged here, credentials redacted)."""
    expected = isinstance(exc, LlmopsError)
    message = redact(str(exc)) if expected else f"{type(exc).__name__}: {redact(str(exc))}"
    kind = failure_kind(exc)
    log.warning("route %s target %s: cannot resolve (%s): %s", route, target, kind, message, exc_info=not expected)
    return Failure(route, target, kind, message)


def targets_of(spec: RouteSpec) -> list[TargetSpec]:
    """A route's targets, its shadow last."""
    return [*spec.targets, *([spec.shadow] if spec.shadow else [])]


def _memo(cache: dict[str, T | BaseException], key: str, fn: Callable[[str], T]) -> T:
    """``fn(key)`` once per pass: a failure is remembered too (each reference is asked once)."""
    if key not in cache:
        try:
            cache[key] = fn(key)
        except Exception as exc:  # noqa: BLE001 - re-raised below, for every target that uses the reference
            cache[key] = exc
    found = cache[key]
    if isinstance(found, BaseException):
        raise found
    return found


def resolve_targets(
    specs: Mapping[str, RouteSpec],
    engines: Mapping[str, EngineSpec],
    base_models: Mapping[str, str],
    resolver: RouteResolver,
) -> dict[str, dict[str, Pick | Failure]]:
    """Blocking: route -> target -> :class:`Pick` or :class:`Failure` (each distinct reference asked once)."""
    prompts: dict[str, ResolvedPrompt | BaseException] = {}
    adapters: dict[str, ResolvedAdapter | BaseException] = {}
    out: dict[str, dict[str, Pick | Failure]] = {}
    for name, spec in specs.items():
        picks: dict[str, Pick | Failure] = {}
        for t in targets_of(spec):
            try:
                engine = engine_of(t, engines)
                release = target_release(name, t, base_models.get(engine, engine), resolver.release)
                prompt = _memo(prompts, str(release.prompt), resolver.prompt) if release.prompt else None
                adapter = _memo(adapters, str(release.adapter), resolver.adapter) if release.adapter else None
                picks[t.name] = Pick(prompt, adapter)
            except Exception as exc:  # noqa: BLE001 - one target's failure must not stop the others; logged
                picks[t.name] = failure_of(name, t.name, exc)
        out[name] = picks
    return out
