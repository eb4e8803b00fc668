"""Sandboxed, bounded Jinja2 rendering, and the static check run at validate/push time.

Templates render in :class:`jinja2.sandbox.ImmutableSandboxedEnvironment` with ``StrictUndefined``
(a missing variable is an error, not an empty string) and a bound on output size. Templates that
name underscore attributes (``__class__``, ``__globals__``, ``__mro__`` …) are refused statically,
before they ever reach the registry; the sandbox is the second line of defence at render time.
Variable *values* are data: ``{{7*7}}`` inside a value renders literally.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from llmops.errors import RenderError

MAX_OUTPUT_CHARS = 256 * 1024


def make_environment() -> ImmutableSandboxedEnvironment:
    """A fresh sandboxed environment (no shared state between callers)."""
    return ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


@dataclass(frozen=True)
class TemplateIssue:
    """A problem found in one template: message and 1-based line inside the template."""

    message: str
    line: int | None = None


def _unsafe_name(name: object) -> bool:
    return isinstance(name, str) and name.startswith("_")


def check_template(source: str, declared: set[str]) -> list[TemplateIssue]:
    """Static check of one template: syntax, unsafe attribute access, undeclared variables."""
    env = make_environment()
    try:
        ast = env.parse(source)
    except TemplateSyntaxError as exc:
        return [TemplateIssue(f"template syntax error: {exc.message}", exc.lineno)]
    issues: list[TemplateIssue] = []
    for node in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Name)):
        if isinstance(node, nodes.Getattr) and _unsafe_name(node.attr):
            issues.append(TemplateIssue(f"unsafe attribute access '.{node.attr}' is refused", node.lineno))
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and _unsafe_name(node.arg.value):
            issues.append(TemplateIssue(f"unsafe item access [{node.arg.value!r}] is refused", node.lineno))
        elif isinstance(node, nodes.Name) and _unsafe_name(node.name):
            issues.append(TemplateIssue(f"unsafe name '{node.name}' is refused", node.lineno))
    for name in sorted(meta.find_undeclared_variables(ast) - declared):
        if not _unsafe_name(name):
            issues.append(TemplateIssue(f"variable '{name}' is used but not declared under 'variables'"))
    return issues


def render_template(source: str, variables: Mapping[str, object], *, max_chars: int = MAX_OUTPUT_CHARS) -> str:
    """Render ``source`` in the sandbox; raise RenderError on missing variables or oversize output."""
    env = make_environment()
    try:
        template = env.from_string(source)
        parts: list[str] = []
        size = 0
        for chunk in template.generate(**variables):
            size += len(chunk)
            if size > max_chars:
                raise RenderError(f"rendered output exceeds {max_chars} characters")
            parts.append(chunk)
    except UndefinedError as exc:
        raise RenderError(f"missing variable: {exc.message}") from exc
    except SecurityError as exc:
        raise RenderError(f"template refused by the sandbox: {exc}") from exc
    except TemplateSyntaxError as exc:
        raise RenderError(f"template syntax error at line {exc.lineno}: {exc.message}") from exc
    except (TypeError, ValueError, ArithmeticError, OverflowError) as exc:
        raise RenderError(f"template failed to render: {exc}") from exc
    return "".join(parts)
