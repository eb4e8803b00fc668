"""Prompt references: ``NAME``, ``NAME@alias``, ``NAME/3``, and MLflow's ``prompts:/NAME/3`` forms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from llmops.refs import VersionRef, check_alias


@dataclass(frozen=True)
class PromptRef(VersionRef):
    kind: ClassVar[str] = "prompt"


__all__ = ["PromptRef", "check_alias"]
