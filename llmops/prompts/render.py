"""Render a prompt spec into chat messages, checking variables against their declarations and bounds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmops.errors import RenderError
from llmops.prompts.sandbox import MAX_OUTPUT_CHARS, Budget, render_template
from llmops.prompts.spec import PromptSpec, value_has_type


def resolve_variables(spec: PromptSpec, given: Mapping[str, Any], *, version: int | None = None) -> dict[str, Any]:
    """Apply defaults and check types, bounds and unknown names; raise RenderError naming the variable."""
    unknown = sorted(set(given) - set(spec.variables))
    if unknown:
        raise RenderError(f"unknown variable(s): {', '.join(unknown)}", prompt=spec.name, version=version)
    values: dict[str, Any] = {}
    for name, decl in spec.variables.items():
        if name in given:
            value = given[name]
        elif decl.default is not None:
            value = decl.default
        elif decl.required:
            raise RenderError(f"missing required variable '{name}'", prompt=spec.name, version=version)
        else:
            value = ""
        if name in given and not value_has_type(value, decl.type):
            raise RenderError(
                f"variable '{name}' must be of type {decl.type}, got {type(value).__name__}",
                prompt=spec.name,
                version=version,
            )
        problem = decl.problem(value)
        if problem is not None:
            raise RenderError(f"variable '{name}' {problem}", prompt=spec.name, version=version)
        values[name] = value
    return values


def coerce_cli_value(spec: PromptSpec, name: str, raw: str) -> Any:
    """Turn a ``--var name=value`` string into the declared type of ``name``."""
    decl = spec.variables.get(name)
    if decl is None or decl.type == "string":
        return raw
    try:
        if decl.type == "integer":
            return int(raw)
        if decl.type == "number":
            return float(raw)
    except ValueError as exc:
        raise RenderError(f"variable '{name}' expects {decl.type}, got {raw!r}", prompt=spec.name) from exc
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise RenderError(f"variable '{name}' expects boolean, got {raw!r}", prompt=spec.name)


def render_messages(
    spec: PromptSpec,
    variables: Mapping[str, Any],
    *,
    version: int | None = None,
    max_chars: int = MAX_OUTPUT_CHARS,
    budget: Budget | None = None,
) -> list[dict[str, str]]:
    """The spec's messages with every template rendered: ``[{"role": ..., "content": ...}]``."""
    values = resolve_variables(spec, variables, version=version)
    out = []
    room = max_chars
    for message in spec.messages:
        try:
            content = render_template(message.content, values, max_chars=room, budget=budget)
        except RenderError as exc:
            raise RenderError(str(exc), prompt=spec.name, version=version) from exc
        room -= len(content)
        out.append({"role": message.role, "content": content})
    return out
