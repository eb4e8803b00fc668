"""Where releases come from: prompt and adapter references resolved to exact versions.

The gateway asks a :class:`RouteResolver` only when it refreshes its route table (at start, every
``refresh.interval_s``, and on ``POST /admin/reload``), never per request. Calls may block (registry
round trips, adapter downloads): the refresher runs them in a worker thread.

* :class:`RegistryResolver`: the MLflow registry of a workspace (aliases followed, adapters fetched
  to the local cache and sha256-verified by :meth:`AdapterRegistry.fetch`).
* :class:`StaticResolver`: fixed versions given in code, or prompt files read from a folder; for
  tests and benchmarks that run without a registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from llmops.adapters.registry import AdapterRef, AdapterRegistry
from llmops.config.workspace import Workspace
from llmops.errors import NotFoundError
from llmops.prompts.refs import PromptRef
from llmops.prompts.registry import PromptRegistry
from llmops.prompts.spec import PromptSpec


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
        """The name engines know it by (same rule as ``AdapterVersionInfo.lora_name``)."""
        return f"{self.name}-v{self.version}"


class RouteResolver(Protocol):
    """Resolves references (``NAME``, ``NAME@alias``, ``NAME/VERSION``) to exact versions; may block."""

    def prompt(self, ref: str) -> ResolvedPrompt: ...

    def adapter(self, ref: str) -> ResolvedAdapter: ...

    def release(self, route: str, stage: str) -> tuple[str | None, str | None] | None:
        """Exact (adapter, prompt) refs of ``route``'s release at ``stage``; None when it has none."""
        ...


class RegistryResolver:
    """Resolve against a workspace's MLflow registry; adapters are fetched into the local cache."""

    def __init__(self, ws: Workspace, *, cache_dir: Path | None = None) -> None:
        self._ws = ws
        self._cache_dir = cache_dir
        self._registries: tuple[PromptRegistry, AdapterRegistry] | None = None

    def _connect(self) -> tuple[PromptRegistry, AdapterRegistry]:
        if self._registries is None:
            from llmops.registry.tracking import connect

            client = connect(self._ws)
            self._registries = (PromptRegistry(client, self._ws), AdapterRegistry(client, self._ws))
        return self._registries

    def prompt(self, ref: str) -> ResolvedPrompt:
        info = self._connect()[0].get(PromptRef.parse(ref))
        return ResolvedPrompt(info.name, info.version, info.spec)

    def adapter(self, ref: str) -> ResolvedAdapter:
        adapters = self._connect()[1]
        info = adapters.get(AdapterRef.parse(ref))
        path = adapters.fetch(info, cache_dir=self._cache_dir)
        return ResolvedAdapter(info.name, info.version, info.sha256, path)

    def release(self, route: str, stage: str) -> tuple[str | None, str | None] | None:
        from llmops.registry.tracking import connect
        from llmops.release_store import ReleaseStore

        found = ReleaseStore(connect(self._ws), self._ws).at_stage(route, stage)
        if found is None:
            return None
        return (None if found.adapter == "none" else found.adapter, None if found.prompt == "none" else found.prompt)


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
        from llmops.prompts.files import discover, load_checked

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

    def release(self, route: str, stage: str) -> tuple[str | None, str | None] | None:
        return None  # no release pointers without a registry: targets use their adapter/prompt refs
