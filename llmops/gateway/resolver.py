"""Where releases come from: prompt and adapter references resolved to exact versions.

The gateway asks a :class:`RouteResolver` only when it refreshes its route table (at start, every
``refresh.interval_s``, and on ``POST /admin/reload``), never per request. Calls may block (registry
round trips, adapter downloads): the refresher runs them in a worker thread. It also reads each
route's :class:`~llmops.registry.routestate.RouteState` (weights, stage pointer versions, the rollout
owning the weights) every ``refresh.state_interval_s``, and writes weights for ``PUT /admin/routes``.

* :class:`RegistryResolver`: the registry of a workspace (aliases followed, adapters fetched to the
  local cache and sha256-verified by :meth:`llmops.registry.adapters.AdapterStore.fetch`); route
  state through ``registry.routes``.
* :class:`StaticResolver`: fixed versions given in code, or prompt files read from a folder; for
  tests and benchmarks that run without a registry. No route state: weights set by ``PUT`` stay in
  the process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from llmops.config.workspace import Workspace
from llmops.errors import NotFoundError
from llmops.prompts.files import discover, load_checked
from llmops.prompts.spec import PromptSpec
from llmops.refs import AdapterRef, PromptRef
from llmops.registry import Registry, connect
from llmops.registry.adapters import lora_name
from llmops.registry.routestate import RouteState
from llmops.release import Release


@dataclass(frozen=True)
class ResolvedPrompt:
    name: str
    version: int
    spec: PromptSpec

    @property
    def label(self) -> str:
        return f"{self.name}/{self.version}"


@dataclass(frozen=True)
class ResolvedAdapter:
    """An exact adapter version; ``path`` is a verified local copy to load (None: the engine has it)."""

    name: str
    version: int
    sha256: str
    path: Path | None

    @property
    def label(self) -> str:
        return f"{self.name}/{self.version}"

    @property
    def lora_name(self) -> str:
        """The name engines know it by, ``NAME-vVERSION-SHA12`` (:func:`llmops.registry.adapters.lora_name`)."""
        return lora_name(self.name, self.version, self.sha256)


class RouteResolver(Protocol):
    """Resolves references (``NAME``, ``NAME@alias``, ``NAME/VERSION``) to exact versions; may block."""

    def prompt(self, ref: str) -> ResolvedPrompt: ...

    def adapter(self, ref: str) -> ResolvedAdapter: ...

    def release(self, route: str, stage: str) -> Release | None:
        """``route``'s release recorded at ``stage`` (exact versions); None only when the registry answered
        that there is none. Any failure to find out raises (``RegistryError``): the target then keeps its
        last-known-good release; it never falls back to its configured references."""
        ...

    def route_state(self, route: str) -> RouteState | None:
        """``route``'s state (one registry round trip); None when there is none. Failures raise."""
        ...

    def write_weights(self, route: str, weights: Mapping[str, int], *, actor: str, force: bool, reason: str) -> None:
        """Record ``route``'s weights where every replica reads them (RolloutActive, RegistryError)."""
        ...


class RegistryResolver:
    """Resolve against a workspace's registry; adapters are fetched into the local cache."""

    def __init__(self, ws: Workspace, *, cache_dir: Path | None = None) -> None:
        self._ws = ws
        self._cache_dir = cache_dir
        self._registry: Registry | None = None

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = connect(self._ws)
        return self._registry

    def prompt(self, ref: str) -> ResolvedPrompt:
        info = self.registry.prompts.get(PromptRef.parse(ref))
        return ResolvedPrompt(info.name, info.version, info.spec)

    def adapter(self, ref: str) -> ResolvedAdapter:
        adapters = self.registry.adapters
        info = adapters.get(AdapterRef.parse(ref))
        path = adapters.fetch(info, cache_dir=self._cache_dir)
        return ResolvedAdapter(info.name, info.version, info.sha256, path)

    def release(self, route: str, stage: str) -> Release | None:
        found = self.registry.pointers.at_stage(route, stage)
        return None if found is None else found.release

    def route_state(self, route: str) -> RouteState | None:
        return self.registry.routes.read(route)

    def write_weights(self, route: str, weights: Mapping[str, int], *, actor: str, force: bool, reason: str) -> None:
        self.registry.routes.set_weights(route, weights, actor=actor, force=force, reason=reason)


class StaticResolver:
    """Fixed versions: ``prompts`` and ``adapters`` map a reference string to its resolution.

    A reference not in the table is looked up by name alone (``support-triage@production`` falls back
    to an entry for ``support-triage``), so a folder of prompt files serves every alias.
    """

    def __init__(
        self,
        prompts: Mapping[str, ResolvedPrompt] | None = None,
        adapters: Mapping[str, ResolvedAdapter] | None = None,
    ) -> None:
        self._prompts = dict(prompts or {})
        self._adapters = dict(adapters or {})

    @classmethod
    def from_prompt_dir(cls, folder: Path, adapters: Mapping[str, ResolvedAdapter] | None = None) -> StaticResolver:
        """Every checked prompt file under ``folder`` as version 0 of its name."""
        prompts = {}
        for path in discover(folder):
            spec = load_checked(path)
            prompts[spec.name] = ResolvedPrompt(spec.name, 0, spec)
        return cls(prompts, adapters)

    def prompt(self, ref: str) -> ResolvedPrompt:
        found = self._prompts.get(ref) or self._prompts.get(PromptRef.parse(ref).name)
        if found is None:
            raise NotFoundError(f"prompt {ref} not found in the static table")
        return found

    def adapter(self, ref: str) -> ResolvedAdapter:
        found = self._adapters.get(ref) or self._adapters.get(AdapterRef.parse(ref).name)
        if found is None:
            raise NotFoundError(f"adapter {ref} not found in the static table")
        return found

    def release(self, route: str, stage: str) -> Release | None:
        return None  # no release pointers without a registry: targets use their adapter/prompt refs

    def route_state(self, route: str) -> RouteState | None:
        return None  # no registry: the file's weights (or those PUT into this process) serve

    def write_weights(self, route: str, weights: Mapping[str, int], *, actor: str, force: bool, reason: str) -> None:
        return None  # nowhere to share them: PUT /admin/routes applies them to this process only
