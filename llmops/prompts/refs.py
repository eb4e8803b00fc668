"""Prompt references: ``NAME``, ``NAME@alias``, ``NAME/3``, and MLflow's ``prompts:/NAME/3`` forms."""

from __future__ import annotations

import re
from dataclasses import dataclass

from llmops.errors import PromptError
from llmops.names import NAME_PATTERN, check_name

_REF_RE = re.compile(r"^(?:prompts:/)?(?P<name>[^@/]+)(?:@(?P<alias>[^@/]+)|/(?P<version>[^@/]+))?$")
_ALIAS_RE = re.compile(rf"^{NAME_PATTERN}$")


@dataclass(frozen=True)
class PromptRef:
    """A reference to one prompt version: exact, by alias, or (neither) the latest."""

    name: str
    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: str) -> PromptRef:
        match = _REF_RE.match(text.strip())
        if not match:
            raise PromptError(f"invalid prompt reference {text!r}: use NAME, NAME@alias or NAME/VERSION")
        name = check_name(match["name"], "prompt")
        if match["alias"] is not None:
            return cls(name, alias=check_alias(match["alias"]))
        if match["version"] is not None:
            if not match["version"].isdigit() or int(match["version"]) < 1:
                raise PromptError(f"invalid prompt version {match['version']!r} in {text!r}")
            return cls(name, version=int(match["version"]))
        return cls(name)

    def __str__(self) -> str:
        if self.alias:
            return f"{self.name}@{self.alias}"
        if self.version is not None:
            return f"{self.name}/{self.version}"
        return self.name


def check_alias(alias: str) -> str:
    if not _ALIAS_RE.match(alias) or alias.isdigit() or alias == "latest":
        raise PromptError(f"invalid alias {alias!r}: use a name such as 'production' or 'canary'")
    return alias
