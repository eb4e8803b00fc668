"""The prompt spec: a reviewed YAML file in ``prompts/``, and its canonical content hash.

Every variable is bounded: a string by ``max_length`` (default 8192), an integer or a number by
``minimum``/``maximum`` (default ±1,000,000 for integers, ±1e12 for numbers; numbers must be finite),
so a client's ``prompt_variables`` can never carry an unbounded value into a template. Bounds left
at their defaults stay out of the canonical JSON, so existing prompt versions keep their hash.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, field_validator, model_serializer, model_validator

from llmops.config.base import StrictModel
from llmops.config.yamlio import load_model
from llmops.names import NAME_PATTERN

VarType = Literal["string", "integer", "number", "boolean"]
DEFAULT_INT_BOUND = 1_000_000
DEFAULT_NUMBER_BOUND = 1e12
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
    minimum: int | float | None = Field(None, description="smallest accepted integer/number (default -1e6 / -1e12)")
    maximum: int | float | None = Field(None, description="largest accepted integer/number (default 1e6 / 1e12)")

    @model_validator(mode="after")
    def _default_fits(self) -> Variable:
        if (self.minimum is not None or self.maximum is not None) and self.type not in ("integer", "number"):
            raise ValueError(f"minimum/maximum apply to integer and number variables, not {self.type}")
        for bound in (self.minimum, self.maximum):
            if bound is not None and (isinstance(bound, bool) or not math.isfinite(bound)):
                raise ValueError("minimum and maximum must be finite numbers")
        low, high = self.bounds()
        if low > high:
            raise ValueError(f"minimum {low} is above maximum {high}")
        if self.default is not None:
            if not value_has_type(self.default, self.type):
                raise ValueError(f"default {self.default!r} is not of type {self.type}")
            problem = self.problem(self.default)
            if problem:
                raise ValueError(f"default {self.default!r}: {problem}")
        return self

    @model_serializer(mode="wrap")
    def _drop_default_bounds(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in ("minimum", "maximum"):
            if data.get(name) is None:
                data.pop(name, None)
        return data

    def bounds(self) -> tuple[float, float]:
        """The accepted range of an integer or number variable."""
        default = DEFAULT_INT_BOUND if self.type == "integer" else DEFAULT_NUMBER_BOUND
        low = -default if self.minimum is None else self.minimum
        high = default if self.maximum is None else self.maximum
        return low, high

    def problem(self, value: object) -> str | None:
        """Why ``value`` (already of the declared type) is out of bounds, or None."""
        if isinstance(value, str):
            return f"is longer than {self.max_length} characters" if len(value) > self.max_length else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):
                return "must be a finite number"
            low, high = self.bounds()
            if not low <= value <= high:
                return f"must be between {low:g} and {high:g}"
        return None


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
