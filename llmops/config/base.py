"""The one base of every YAML schema: unknown keys are errors, loaded settings are immutable."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A config model: ``extra="forbid"`` (a typo is an error naming the field) and frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)
