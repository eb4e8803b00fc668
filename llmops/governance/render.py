"""Render a :class:`~llmops.governance.document.Document` as Markdown, JSON or HTML.

Markdown escapes ``|``, backslashes and newlines in table cells (a value never breaks its table);
HTML goes through Jinja2 with autoescape on (a prompt description holding ``<script>`` stays text);
JSON is :func:`~llmops.governance.document.document_json` (exact values). The model card is Markdown
with YAML front matter (Hugging Face's format).
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from jinja2 import Environment

from llmops.governance.document import NOT_RECORDED, Document, Section, Table, document_json, text

FORMATS = ("md", "json", "html")

_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ doc.title }}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 70rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.sources { color: #555; font-size: .9em; }
.nr { color: #a33; }
</style>
</head>
<body>
<h1>{{ doc.title }}</h1>
<table>{% for k, v in subject %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table>
{% macro render(s, level) %}
<section id="{{ s.id }}">
<h{{ level }}>{{ s.title }}</h{{ level }}>
{% if s.sources %}<p class="sources">Sources: {{ s.sources | join("; ") }}</p>{% endif %}
{% if s.facts %}<table>{% for label, value in s.facts %}<tr><th>{{ label }}</th>
<td{% if value == nr %} class="nr"{% endif %}>{{ value }}</td></tr>{% endfor %}</table>{% endif %}
{% for p in s.text %}<p>{{ p }}</p>
{% endfor %}
{% for t in s.tables %}{% if t.caption %}<p><strong>{{ t.caption }}</strong></p>{% endif %}
<table><tr>{% for c in t.columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in t.rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</table>
{% endfor %}
{% for sub in s.sections %}{{ render(sub, level + 1) }}{% endfor %}
</section>
{% endmacro %}
{% for s in sections %}{{ render(s, 2) }}{% endfor %}
</body>
</html>
"""


def md_cell(value: str) -> str:
    """``value`` safe inside one Markdown table cell: ``|`` and backslashes escaped, newlines as ``<br>``."""
    return re.sub(r"\r\n|\r|\n", "<br>", value.replace("\\", "\\\\").replace("|", "\\|"))


def md_inline(value: str) -> str:
    """``value`` safe on one Markdown line (a fact, a heading): newlines become spaces."""
    return re.sub(r"\s*[\r\n]+\s*", " ", value)


def _md_table(t: Table) -> list[str]:
    lines = [f"**{md_inline(t.caption)}**", ""] if t.caption else []
    lines.append("| " + " | ".join(md_cell(c) for c in t.columns) + " |")
    lines.append("|" + "---|" * len(t.columns))
    lines += ["| " + " | ".join(md_cell(text(v)) for v in row) + " |" for row in t.rows]
    return [*lines, ""]


def _md_section(s: Section, level: int) -> list[str]:
    lines = [f"{'#' * min(level, 6)} {md_inline(s.title)}", ""]
    if s.sources:
        lines += [f"*Sources: {md_inline('; '.join(s.sources))}*", ""]
    if s.facts:
        lines += [f"- **{md_inline(label)}**: {md_inline(text(value))}" for label, value in s.facts] + [""]
    for paragraph in s.text:
        lines += [md_inline(paragraph), ""]
    for t in s.tables:
        lines += _md_table(t)
    for sub in s.sections:
        lines += _md_section(sub, level + 1)
    return lines


def to_markdown(doc: Document, *, front_matter: bool = False) -> str:
    """The document as Markdown; with ``front_matter``, its metadata first as YAML between ``---`` lines."""
    lines: list[str] = []
    if front_matter:
        lines += ["---", yaml.safe_dump(dict(doc.metadata), sort_keys=False, allow_unicode=True).rstrip(), "---", ""]
    lines += [f"# {md_inline(doc.title)}", ""]
    lines += [f"- **{md_inline(k)}**: {md_inline(text(v))}" for k, v in doc.subject.items()] + [""]
    for s in doc.sections:
        lines += _md_section(s, 2)
    return "\n".join(lines).rstrip() + "\n"


def to_json(doc: Document) -> str:
    return json.dumps(document_json(doc), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _html_view(s: Section) -> dict[str, Any]:
    return {
        "id": s.id,
        "title": s.title,
        "sources": s.sources,
        "facts": [(label, text(value)) for label, value in s.facts],
        "text": s.text,
        "tables": [
            {"caption": t.caption, "columns": t.columns, "rows": [[text(v) for v in row] for row in t.rows]}
            for t in s.tables
        ],  # fmt: skip
        "sections": [_html_view(sub) for sub in s.sections],
    }


def to_html(doc: Document) -> str:
    env = Environment(autoescape=True, keep_trailing_newline=True)
    return env.from_string(_HTML).render(
        doc=doc,
        subject=[(k, text(v)) for k, v in doc.subject.items()],
        sections=[_html_view(s) for s in doc.sections],
        nr=NOT_RECORDED,
    )


def render(doc: Document, fmt: str) -> str:
    """``doc`` in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "md":
        return to_markdown(doc)
    if fmt == "json":
        return to_json(doc)
    if fmt == "html":
        return to_html(doc)
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
