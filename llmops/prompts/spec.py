"""The prompt spec: a reviewed YAML file in ``prompts/``, and its canonical content hash."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from llmops.config.base import StrictModel
from llmops.config.yamlio import load_model
from llmops.names import NAME_PATTERN

VarType = Literal["string", "integer", "number", "boolean"]
_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


class Message(StrictModel):
    role: Literal["system", "user", "assistant"]
    content: str = Field(min_length=1, description="Jinja2 template text; `{{ var }}` slots")


class Variable(StrictModel):
    type: VarType = "string"
    required: bool = True
    default: str | int | float | bool | None = None
    description: str = ""
    max_length: int = Field(8192, ge=1, le=1_000_000, description="longest accepted string value")

    @model_validator(mode="after")
    def _default_fits(self) -> Variable:
        if self.default is not None and not value_has_type(self.default, self.type):
            raise ValueError(f"default {self.default!r} is not of type {self.type}")
        return self


class GenerationParams(StrictModel):
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1, le=32768)
    stop: list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)

    def as_request(self) -> dict[str, Any]:
        """The params set, as OpenAI request fields."""
        return self.model_dump(exclude_none=True)


class PromptSpec(StrictModel):
    """Schema of ``prompts/NAME.yaml``."""

    name: str = Field(pattern=f"^{NAME_PATTERN}$")
    description: str = ""
    messages: list[Message] = Field(min_length=1)
    variables: dict[str, Variable] = Field(default_factory=dict)
    params: GenerationParams = GenerationParams()
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("variables")
    @classmethod
    def _identifiers(cls, v: dict[str, Variable]) -> dict[str, Variable]:
        for key in v:
            if not key.isidentifier() or key.startswith("_"):
                raise ValueError(f"variable name {key!r} must be an identifier not starting with '_'")
        return v

    def canonical_json(self) -> str:
        """A stable JSON form: same content, same bytes, whatever the YAML formatting."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def content_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    def to_yaml_data(self) -> dict[str, Any]:
        """Plain data for writing the spec back as YAML (defaults left out)."""
        return self.model_dump(mode="json", exclude_defaults=True)


def value_has_type(value: object, var_type: str) -> bool:
    if var_type != "boolean" and isinstance(value, bool):
        return False
    return isinstance(value, _PY_TYPES[var_type])


def load_spec(path: Path, *, display: str | None = None) -> PromptSpec:
    """Load and schema-check one prompt file (templates are checked by ``check_spec``)."""
    return load_model(PromptSpec, path, display=display)
