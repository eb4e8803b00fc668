"""Releases: base model + adapter version (or none) + prompt version + generation params.

A release is the unit that is evaluated, promoted, canaried and rolled back. References with
aliases (``support-triage@production``) are resolved to exact versions here, once, so everything
downstream (eval records, the request log, the audit log) names exact versions.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from llmops.adapters.registry import AdapterRegistry, AdapterVersionInfo
from llmops.prompts.registry import PromptRegistry, PromptVersionInfo

TAG_ADAPTER = "llmops.release.adapter"
TAG_PROMPT = "llmops.release.prompt"
TAG_BASE = "llmops.release.base_model"
TAG_KEY = "llmops.release.key"


@dataclass(frozen=True)
class Release:
    base_model: str
    adapter: AdapterVersionInfo | None = None
    prompt: PromptVersionInfo | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def adapter_ref(self) -> str:
        return self.adapter.ref if self.adapter else "none"

    @property
    def prompt_ref(self) -> str:
        return f"{self.prompt.name}/{self.prompt.version}" if self.prompt else "none"

    def request_params(self) -> dict[str, Any]:
        """Generation params: the prompt version's defaults, overridden by the release's own."""
        base = self.prompt.spec.params.as_request() if self.prompt else {}
        return {**base, **self.params}

    def key(self) -> str:
        """Content identity: same base, adapter bytes, prompt content and params ⇒ same key."""
        body = {
            "base": self.base_model,
            "adapter": self.adapter.sha256 if self.adapter else None,
            "prompt": self.prompt.content_hash if self.prompt else None,
            "params": self.request_params(),
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    def label(self) -> str:
        return f"adapter {self.adapter_ref} + prompt {self.prompt_ref}"

    def tags(self) -> dict[str, str]:
        return {
            TAG_ADAPTER: self.adapter_ref,
            TAG_PROMPT: self.prompt_ref,
            TAG_BASE: self.base_model,
            TAG_KEY: self.key(),
        }


def resolve(
    adapters: AdapterRegistry,
    prompts: PromptRegistry,
    *,
    base_model: str,
    adapter: str | None,
    prompt: str | None,
    params: dict[str, Any] | None = None,
) -> Release:
    """Resolve references (aliases included) to exact versions; NotFoundError names what is missing."""
    return Release(
        base_model=base_model,
        adapter=adapters.get(adapter) if adapter else None,
        prompt=prompts.get(prompt) if prompt else None,
        params=dict(params or {}),
    )
