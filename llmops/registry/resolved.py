"""A release resolved against the registry: exact references plus what each version holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmops.registry.adapters import AdapterStore, AdapterVersionInfo
from llmops.registry.prompts import PromptStore, PromptVersionInfo
from llmops.release import Release


@dataclass(frozen=True)
class ResolvedRelease:
    """An exact :class:`~llmops.release.Release` and the adapter and prompt versions it names."""

    release: Release
    adapter: AdapterVersionInfo | None
    prompt: PromptVersionInfo | None

    @property
    def key(self) -> str:
        return self.release.key

    @property
    def base_model(self) -> str:
        return self.release.base_model

    @property
    def lora_name(self) -> str | None:
        """The name an engine serves the adapter under (None: the base model alone)."""
        return self.adapter.lora_name if self.adapter else None

    def request_params(self) -> dict[str, Any]:
        """Generation params: the prompt version's defaults, overridden by the release's own."""
        defaults = self.prompt.spec.params.as_request() if self.prompt else {}
        return {**defaults, **self.release.params}

    def label(self) -> str:
        return self.release.label()


def resolve_release(adapters: AdapterStore, prompts: PromptStore, release: Release) -> ResolvedRelease:
    """Look up every reference of ``release`` (aliases followed); NotFoundError names what is missing."""
    adapter = adapters.get(release.adapter) if release.adapter else None
    prompt = prompts.get(release.prompt) if release.prompt else None
    exact = Release(
        base_model=release.base_model,
        adapter=adapter.exact_ref if adapter else None,
        prompt=prompt.exact_ref if prompt else None,
        params=release.params,
    )
    return ResolvedRelease(exact, adapter, prompt)
