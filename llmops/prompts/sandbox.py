"""Sandboxed, bounded Jinja2 rendering, and the static check run at validate/push time.

Templates render in :class:`BoundedEnvironment`, an :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment`
with ``StrictUndefined`` (a missing variable is an error, not an empty string) that bounds what a
render may build *before* it allocates:

- ``"-" * n``, ``list * n``, ``a + b`` and ``"%*s" % (n, x)`` are refused when the result would pass
  the output limit; ``x ** y`` and integer results are refused beyond :data:`MAX_INT_BITS` bits;
- the filters that build strings from a number or a list (``center``, ``indent``, ``format``,
  ``replace``, ``join``) check the size first;
- output is produced chunk by chunk and stops at the output limit;
- with a :class:`Budget`, every operator, call and output chunk, and every 1024 steps of a
  ``range`` loop, checks the render's deadline (the gateway renders such templates off its event
  loop, see :mod:`llmops.gateway.prompting`).

Templates that name underscore attributes (``__class__``, ``__globals__``, ``__mro__`` …) are refused
statically, before they ever reach the registry; the sandbox is the second line of defence at render
time. Variable *values* are data: ``{{7*7}}`` inside a value renders literally.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.filters import do_format, do_indent, do_join, do_replace
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from llmops.errors import RenderError

MAX_OUTPUT_CHARS = 256 * 1024
MAX_INT_BITS = 256  # integers a template computes stay below 2**256
BUDGET_VAR = "_llmops_budget"  # context entry holding the render's Budget (templates cannot name `_` names)
_RANGE_CHECK_EVERY = 1024


@dataclass(frozen=True, slots=True)
class Budget:
    """The deadline (``time.monotonic()``) and time budget of one render."""

    deadline: float
    seconds: float

    @classmethod
    def of(cls, seconds: float) -> Budget:
        return cls(time.monotonic() + seconds, seconds)

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise RenderError(f"rendering exceeded its time budget of {self.seconds:g} s")


class _BudgetedRange:
    """A ``range`` whose iteration checks the render's deadline every 1024 steps."""

    __slots__ = ("_budget", "_range")

    def __init__(self, rng: range, budget: Budget) -> None:
        self._range = rng
        self._budget = budget

    def __len__(self) -> int:
        return len(self._range)

    def __iter__(self) -> Iterator[int]:
        check = self._budget.check
        for i, value in enumerate(self._range):
            if i % _RANGE_CHECK_EVERY == 0:
                check()
            yield value


def _too_long(size: int, max_chars: int, what: str) -> None:
    if size > max_chars:
        raise RenderError(f"{what} would be {size} characters, above the output limit of {max_chars}")


def _check_int(value: object) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise RenderError(f"an integer in the template grew past {MAX_INT_BITS} bits")


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, with operators and size-building filters bounded by ``max_chars``."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, max_chars: int = MAX_OUTPUT_CHARS) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False)
        self.max_chars = max_chars
        self._eval_ctx = EvalContext(self)
        self.filters.update(
            center=self._center, indent=self._indent, format=self._format, replace=self._replace, join=self._join
        )

    # -- operators --------------------------------------------------------------------------------
    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = context.get(BUDGET_VAR)
        if budget is not None:
            budget.check()
        limit = self.max_chars
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and _is_count(count):
                    _too_long(len(seq) * count, limit, "a repeated value")
        elif operator == "**":
            big = _is_count(left) and _is_count(right) and abs(left) > 1 and right > 0
            if big and right * (abs(left).bit_length() - 1) > MAX_INT_BITS:
                raise RenderError(f"{left} ** {right} would grow past {MAX_INT_BITS} bits")
        elif operator == "+":
            if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
                _too_long(len(left) + len(right), limit, "a concatenation")
        elif operator == "%" and isinstance(left, str) and "*" in left:  # "%*s": the width is an argument
            for arg in right if isinstance(right, tuple) else (right,):
                if _is_count(arg):
                    _too_long(abs(arg), limit, "a %-format width")
        result = self.binop_table[operator](left, right)
        _check_int(result)
        return result

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        budget = __context.get(BUDGET_VAR)
        if budget is not None:
            budget.check()
        result = super().call(__context, __obj, *args, **kwargs)
        if budget is not None and isinstance(result, range) and len(result) > _RANGE_CHECK_EVERY:
            return _BudgetedRange(result, budget)
        return result

    # -- filters that build a string from a number or a list ---------------------------------------
    def _center(self, value: str, width: int = 80) -> str:
        if _is_count(width):
            _too_long(width, self.max_chars, "center()")
        return str(value).center(width)

    def _indent(self, s: str, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
        pad = width if isinstance(width, str) else " " * min(max(width, 0), self.max_chars + 1)
        lines = str(s).count("\n") + 1
        _too_long(len(str(s)) + len(pad) * lines, self.max_chars, "indent()")
        return do_indent(s, width, first, blank)

    def _format(self, value: str, *args: Any, **kwargs: Any) -> str:
        if "*" in str(value):  # "%*s": the width is an argument
            for arg in (*args, *kwargs.values()):
                if _is_count(arg):
                    _too_long(abs(arg), self.max_chars, "a format() width")
        return do_format(value, *args, **kwargs)

    def _replace(self, s: str, old: str, new: str, count: int | None = None) -> str:
        text, old_s, new_s = str(s), str(old), str(new)
        hits = text.count(old_s) if old_s else len(text) + 1
        if count is not None and count >= 0:
            hits = min(hits, count)
        _too_long(len(text) + hits * max(len(new_s) - len(old_s), 0), self.max_chars, "replace()")
        return str(do_replace(self._eval_ctx, text, old_s, new_s, count))

    def _join(self, value: Any, d: str = "", attribute: str | int | None = None) -> str:
        items = list(value)
        separators = len(str(d)) * max(len(items) - 1, 0)
        if attribute is None:
            _too_long(sum(len(str(x)) for x in items) + separators, self.max_chars, "join()")
        else:
            _too_long(separators, self.max_chars, "join()")
        out = str(do_join(self._eval_ctx, items, d, attribute))
        _too_long(len(out), self.max_chars, "join()")
        return out


def make_environment(max_chars: int = MAX_OUTPUT_CHARS) -> BoundedEnvironment:
    """A fresh bounded sandbox (no shared state between callers)."""
    return BoundedEnvironment(max_chars)


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


def generate_bounded(chunks: Iterator[str], *, max_chars: int, budget: Budget | None = None) -> str:
    """Join a template's output chunks, stopping at ``max_chars`` (and at the budget's deadline).

    Every failure of the render becomes a RenderError: missing variables, sandbox refusals, arithmetic
    errors, and a MemoryError from an allocation no bound above caught.
    """
    parts: list[str] = []
    size = 0
    try:
        for chunk in chunks:
            size += len(chunk)
            if size > max_chars:
                raise RenderError(f"rendered output exceeds {max_chars} characters")
            if budget is not None:
                budget.check()
            parts.append(chunk)
    except UndefinedError as exc:
        raise RenderError(f"missing variable: {exc.message}") from exc
    except SecurityError as exc:
        raise RenderError(f"template refused by the sandbox: {exc}") from exc
    except (TypeError, ValueError, ArithmeticError, OverflowError, MemoryError, RecursionError) as exc:
        raise RenderError(f"template failed to render: {exc}") from exc
    return "".join(parts)


def render_template(
    source: str, variables: Mapping[str, object], *, max_chars: int = MAX_OUTPUT_CHARS, budget: Budget | None = None
) -> str:
    """Render ``source`` in the sandbox; raise RenderError on missing variables or oversize output."""
    env = make_environment(max_chars)
    try:
        template = env.from_string(source)
    except TemplateSyntaxError as exc:
        raise RenderError(f"template syntax error at line {exc.lineno}: {exc.message}") from exc
    return generate_bounded(template.generate(**variables, **{BUDGET_VAR: budget}), max_chars=max_chars, budget=budget)
