"""References to registered versions: ``NAME``, ``NAME@alias``, ``NAME/3`` (and ``prompts:/…``/``models:/…``).

One grammar for prompts, adapters and base models, so every CLI argument and config field that
names a version reads the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Self

from llmops.errors import LlmopsError
from llmops.names import NAME_PATTERN, check_name

_REF_RE = re.compile(r"^(?:[a-z]+:/)?(?P<name>[^@/]+)(?:@(?P<alias>[^@/]+)|/(?P<version>[^@/]+))?$")
_ALIAS_RE = re.compile(rf"^{NAME_PATTERN}$")


def check_alias(alias: str) -> str:
    """An alias is a name that is not a number and not ``latest`` (MLflow reserves both)."""
    if not _ALIAS_RE.match(alias) or alias.isdigit() or alias == "latest":
        raise LlmopsError(f"invalid alias {alias!r}: use a name such as 'production' or 'canary'")
    return alias


@dataclass(frozen=True)
class VersionRef:
    """A reference to one version: exact, by alias, or (neither) the latest."""

    kind: ClassVar[str] = "object"
    name: str
    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: str) -> Self:
        match = _REF_RE.match(text.strip())
        if not match:
            raise LlmopsError(f"invalid {cls.kind} reference {text!r}: use NAME, NAME@alias or NAME/VERSION")
        name = check_name(match["name"], cls.kind)
        if match["alias"] is not None:
            return cls(name, alias=check_alias(match["alias"]))
        if match["version"] is not None:
            if not match["version"].isdigit() or int(match["version"]) < 1:
                raise LlmopsError(f"invalid {cls.kind} version {match['version']!r} in {text!r}")
            return cls(name, version=int(match["version"]))
        return cls(name)

    @property
    def is_exact(self) -> bool:
        """True when the reference names one version (not an alias, not "the latest")."""
        return self.version is not None

    def __str__(self) -> str:
        if self.alias:
            return f"{self.name}@{self.alias}"
        if self.version is not None:
            return f"{self.name}/{self.version}"
        return self.name


@dataclass(frozen=True)
class AdapterRef(VersionRef):
    """A LoRA adapter version in the model registry."""

    kind: ClassVar[str] = "adapter"


@dataclass(frozen=True)
class PromptRef(VersionRef):
    """A prompt version in the prompt registry (``prompts:/NAME/3`` is accepted too)."""

    kind: ClassVar[str] = "prompt"
