"""The one document model behind every compliance file: sections of facts and tables, each with its sources.

A :class:`Document` is what ``llmops report`` builds (the model card's body, the Annex IV technical
documentation) and what :mod:`llmops.governance.render` turns into Markdown, JSON and HTML. Values keep
their types: a metric stays the float its eval record holds, so the JSON form carries the exact value
and the text forms print it with :func:`text` (``repr`` of a float: the shortest string that reads back
as the same float). Anything the registry and the workspace do not record is :data:`NOT_RECORDED`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from llmops.governance.lineage import NOT_RECORDED

Value = str | int | float | bool | None


@dataclass(frozen=True)
class Table:
    """Rows of values under named columns."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Value, ...], ...]
    caption: str = ""


@dataclass(frozen=True)
class Section:
    """One numbered or named part of a document; ``sources`` say which records and files its statements come from."""

    id: str
    title: str
    sources: tuple[str, ...] = ()
    facts: tuple[tuple[str, Value], ...] = ()  # (label, value): one statement each
    text: tuple[str, ...] = ()  # paragraphs, every one built from recorded values
    tables: tuple[Table, ...] = ()
    sections: tuple[Section, ...] = ()


@dataclass(frozen=True)
class Document:
    title: str
    subject: Mapping[str, Value]  # route, stage, release key, pointer version, generated time
    sections: tuple[Section, ...]
    kind: str = "llmops-report"
    metadata: Mapping[str, Any] = field(default_factory=dict)  # the model card's YAML front matter


def or_not_recorded(value: Any) -> Value:
    """``value`` itself, or :data:`NOT_RECORDED` when it is empty (None, "", an empty collection)."""
    if value is None or value == "" or (isinstance(value, list | tuple | dict | set) and not value):
        return NOT_RECORDED
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)


def text(value: Value) -> str:
    """``value`` as printed in Markdown and HTML: floats by ``repr`` (exact), booleans as yes/no."""
    if value is None:
        return NOT_RECORDED
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else NOT_RECORDED
    return str(value)


def prose_number(value: float) -> str:
    """A number inside a sentence, rounded for reading (tables and JSON keep the exact value)."""
    return f"{value:.4g}" if math.isfinite(value) else NOT_RECORDED


def table(columns: Iterable[str], rows: Iterable[Iterable[Any]], caption: str = "") -> Table:
    return Table(tuple(columns), tuple(tuple(or_not_recorded(v) for v in row) for row in rows), caption)


def facts(pairs: Iterable[tuple[str, Any]]) -> tuple[tuple[str, Value], ...]:
    return tuple((label, or_not_recorded(value)) for label, value in pairs)


def _json_value(value: Value) -> Value:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def section_json(section: Section) -> dict[str, Any]:
    return {
        "id": section.id,
        "title": section.title,
        "sources": list(section.sources),
        "facts": {label: _json_value(value) for label, value in section.facts},
        "text": list(section.text),
        "tables": [
            {
                "caption": t.caption,
                "columns": list(t.columns),
                "rows": [dict(zip(t.columns, (_json_value(v) for v in row), strict=True)) for row in t.rows],
            }
            for t in section.tables
        ],  # fmt: skip
        "sections": [section_json(s) for s in section.sections],
    }


def document_json(doc: Document) -> dict[str, Any]:
    """The JSON form: every value exactly as recorded (floats unrounded); NaN has no JSON form and is null."""
    return {
        "kind": doc.kind,
        "title": doc.title,
        "subject": {k: _json_value(v) for k, v in doc.subject.items()},
        "metadata": dict(doc.metadata),
        "sections": [section_json(s) for s in doc.sections],
    }


def walk(sections: Iterable[Section]) -> Iterable[Section]:
    """Every section, depth first."""
    for s in sections:
        yield s
        yield from walk(s.sections)
