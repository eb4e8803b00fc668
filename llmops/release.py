"""The release: base model + adapter version (or none) + prompt version (or none) + generation params.

A release is the unit that is evaluated, promoted, canaried and rolled back. It is one immutable
value everywhere: eval records, release pointers, the gateway's targets, promotion and the demo all
speak :class:`Release`. Its references may name aliases (``support-triage@production``) until the
registry resolves them (:meth:`llmops.registry.Registry.resolve`); an *exact* release names versions
only, and only an exact release has a :attr:`Release.key`.

The key is the digest of the canonical form (base model, exact adapter and prompt versions, params):
the same release always has the same key, on every machine, so eval records, pointers and caches
agree on what "the same release" means.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from llmops.errors import LlmopsError
from llmops.refs import AdapterRef, PromptRef


@dataclass(frozen=True)
class Release:
    """What serves a request; ``adapter=None`` is the base model alone, ``prompt=None`` sends messages as given."""

    base_model: str
    adapter: AdapterRef | None = None
    prompt: PromptRef | None = None
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.params, MappingProxyType):
            object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    @classmethod
    def of(
        cls,
        base_model: str,
        adapter: str | AdapterRef | None = None,
        prompt: str | PromptRef | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Release:
        """A release from reference strings (``NAME``, ``NAME@alias``, ``NAME/VERSION``); ``None`` means none."""
        return cls(
            base_model=base_model,
            adapter=AdapterRef.parse(adapter) if isinstance(adapter, str) else adapter,
            prompt=PromptRef.parse(prompt) if isinstance(prompt, str) else prompt,
            params=params or {},
        )

    @property
    def is_exact(self) -> bool:
        """True when every reference names one version."""
        return all(ref is None or ref.is_exact for ref in (self.adapter, self.prompt))

    def canonical(self) -> dict[str, Any]:
        """The JSON-ready form that identifies the release (stored in the registry, hashed for the key)."""
        return {
            "base_model": self.base_model,
            "adapter": str(self.adapter) if self.adapter else None,
            "prompt": str(self.prompt) if self.prompt else None,
            "params": dict(sorted(self.params.items())),
        }

    @classmethod
    def from_canonical(cls, data: Mapping[str, Any]) -> Release:
        return cls.of(str(data["base_model"]), data.get("adapter"), data.get("prompt"), data.get("params") or {})

    @property
    def key(self) -> str:
        """The release's digest (sha256 hex of its canonical form); only exact releases have one."""
        if not self.is_exact:
            raise LlmopsError(f"release {self.label()} names an alias: resolve it before asking for its key")
        return hashlib.sha256(json.dumps(self.canonical(), sort_keys=True).encode()).hexdigest()

    def label(self) -> str:
        """How people read it: ``adapter support-triage-lora/1 + prompt support-triage/2``."""
        adapter = f"adapter {self.adapter}" if self.adapter else "base model (no adapter)"
        prompt = f"prompt {self.prompt}" if self.prompt else "no prompt"
        return f"{adapter} + {prompt}"

    def __str__(self) -> str:
        return self.label()
