"""Load YAML files into pydantic models, reporting every problem with file, line and field.

PyYAML's node marks give the line of each key, so a schema error such as
``prompts/x.yaml:7 [messages.0.role]: Input should be 'system', 'user' or 'assistant'`` points
at the exact place to edit.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from llmops.errors import ConfigError, Problem, ValidationFailed

M = TypeVar("M", bound=BaseModel)

LineIndex = dict[tuple[str | int, ...], int]


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (a silent overwrite hides mistakes) and reads booleans
    as YAML 1.2 does: only ``true``/``false``, so a key or value ``on``, ``no`` or ``yes`` stays a string."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _index_lines(node: yaml.Node | None, path: tuple[str | int, ...], out: LineIndex) -> None:
    if node is None:
        return
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[(*path, key)] = key_node.start_mark.line + 1
            _index_lines(value_node, (*path, key), out)
            out[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, (*path, i), out)


def parse_yaml(text: str, file: str | Path) -> tuple[Any, LineIndex]:
    """Parse YAML text; return the data and a map from key paths to 1-based line numbers."""
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError.at(file, f"malformed YAML: {exc.problem or exc}", line=line) from exc
    except yaml.YAMLError as exc:
        raise ConfigError.at(file, f"malformed YAML: {exc}") from exc
    lines: LineIndex = {}
    _index_lines(node, (), lines)
    return data, lines


def line_of(lines: LineIndex, loc: tuple[str | int, ...]) -> int | None:
    """Line of the deepest known prefix of ``loc``."""
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def problems_from_validation(exc: ValidationError, file: str | Path, lines: LineIndex) -> list[Problem]:
    """Turn a pydantic ValidationError into one Problem per error, each with line and field."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        field = ".".join(str(p) for p in loc) or None
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        problems.append(Problem(str(file), msg, field=field, line=line_of(lines, loc)))
    return problems


def load_model(model: type[M], path: Path, *, display: str | None = None) -> M:
    """Read ``path`` and validate it as ``model``; raise ConfigError/ValidationFailed naming file and field."""
    shown = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError.at(shown, "file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError.at(shown, f"cannot read file: {exc}") from exc
    return model_from_text(model, text, shown)


def model_from_text(model: type[M], text: str, file: str | Path) -> M:
    """Validate YAML ``text`` as ``model``, reporting all schema problems at once."""
    data, lines = parse_yaml(text, file)
    if data is None:
        raise ConfigError.at(file, "file is empty")
    if not isinstance(data, dict):
        raise ConfigError.at(file, "expected a mapping at the top level", line=1)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(problems_from_validation(exc, file, lines)) from exc


def check_model_file(
    model: type[M], path: Path, *, display: str | None = None
) -> tuple[M | None, list[Problem], LineIndex]:
    """Read and schema-check ``path`` without raising: (model or None, every problem, line index).

    For the ``validate`` commands, which report all problems of all files at once; cross-field checks
    then add their own problems using the returned line index.
    """
    shown = display or str(path)
    try:
        data, lines = parse_yaml(path.read_text(encoding="utf-8"), shown)
    except ConfigError as exc:
        return None, [exc.problem], {}
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(shown, f"cannot read file: {exc}")], {}
    if not isinstance(data, dict):
        return None, [Problem(shown, "expected a mapping at the top level", line=1)], lines
    try:
        return model.model_validate(data), [], lines
    except ValidationError as exc:
        return None, problems_from_validation(exc, shown, lines), lines
