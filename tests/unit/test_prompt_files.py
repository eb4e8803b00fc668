"""Prompt specs: schema problems with file/line/field, template safety, sandboxed bounded rendering."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmops.errors import RenderError, ValidationFailed
from llmops.prompts.files import check_file, load_checked
from llmops.prompts.render import coerce_cli_value, render_messages

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


GOOD = """\
name: greet
messages:
  - role: system
    content: Be brief.
  - role: user
    content: "Hello {{ who }}"
variables:
  who: {type: string}
"""


@pytest.mark.parametrize("path", sorted((REPO / "prompts").glob("*.yaml")), ids=lambda p: p.name)
def test_every_committed_prompt_is_valid(path: Path) -> None:
    spec, problems = check_file(path)
    assert problems == []
    assert spec is not None and spec.name == path.stem


def test_content_hash_ignores_yaml_formatting(tmp_path: Path) -> None:
    a = load_checked(write(tmp_path, "greet", GOOD))
    reformatted = GOOD.replace("who: {type: string}", "who:\n    type: string  # a comment")
    (tmp_path / "b").mkdir()
    b = load_checked(write(tmp_path / "b", "greet", reformatted))
    assert a.content_hash() == b.content_hash()
    changed = load_checked(write(tmp_path, "greet", GOOD.replace("Be brief.", "Be very brief.")))
    assert changed.content_hash() != a.content_hash()


def test_all_schema_problems_reported_with_line_and_field(tmp_path: Path) -> None:
    text = """\
name: Bad Name
messages:
  - role: wizard
    content: hi
colour: blue
"""
    _, problems = check_file(write(tmp_path, "bad", text))
    by_field = {p.field: p for p in problems}
    assert by_field["name"].line == 1
    assert by_field["messages.0.role"].line == 3
    assert by_field["colour"].line == 5 and "unknown field" in by_field["colour"].message
    assert all(p.file.endswith("bad.yaml") for p in problems)


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    _, problems = check_file(write(tmp_path, "broken", "name: x\nmessages: [\n  - role: user\n"))
    assert len(problems) == 1
    assert problems[0].line is not None and "malformed YAML" in problems[0].message


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    _, problems = check_file(write(tmp_path, "greet", GOOD + "name: greet\n"))
    assert any("duplicate key" in p.message for p in problems)


@pytest.mark.parametrize("attr", ["__class__", "__globals__", "__mro__", "__subclasses__"])
def test_templates_reaching_for_dunder_attributes_are_refused_with_line(tmp_path: Path, attr: str) -> None:
    text = f"""\
name: evil
messages:
  - role: system
    content: |
      line one
      {{{{ who.{attr} }}}}
  - role: user
    content: "{{{{ who }}}}"
variables:
  who: {{type: string}}
"""
    path = write(tmp_path, "evil", text)
    _, problems = check_file(path)
    assert len(problems) == 1
    assert attr in problems[0].message
    assert problems[0].line == 6
    assert problems[0].field == "messages.0.content"
    with pytest.raises(ValidationFailed, match=attr):
        load_checked(path)


def test_item_access_to_dunder_is_refused(tmp_path: Path) -> None:
    text = GOOD.replace("Hello {{ who }}", "Hello {{ who['__class__'] }}")
    _, problems = check_file(write(tmp_path, "greet", text))
    assert any("__class__" in p.message for p in problems)


def test_undeclared_variable_is_a_problem(tmp_path: Path) -> None:
    _, problems = check_file(write(tmp_path, "greet", GOOD.replace("{{ who }}", "{{ whom }}")))
    assert any("'whom' is used but not declared" in p.message for p in problems)


def test_file_name_must_match_prompt_name(tmp_path: Path) -> None:
    _, problems = check_file(write(tmp_path, "other", GOOD))
    assert any(p.field == "name" and "differs from the file name" in p.message for p in problems)


def test_values_render_literally_never_as_templates(tmp_path: Path) -> None:
    spec = load_checked(write(tmp_path, "greet", GOOD))
    messages = render_messages(spec, {"who": "{{7*7}} {% for x in range(3) %}x{% endfor %}"})
    assert messages[1] == {"role": "user", "content": "Hello {{7*7}} {% for x in range(3) %}x{% endfor %}"}


def test_missing_and_unknown_and_mistyped_variables(tmp_path: Path) -> None:
    spec = load_checked(write(tmp_path, "greet", GOOD))
    with pytest.raises(RenderError, match="missing required variable 'who'"):
        render_messages(spec, {})
    with pytest.raises(RenderError, match="unknown variable"):
        render_messages(spec, {"who": "a", "extra": 1})
    with pytest.raises(RenderError, match="must be of type string"):
        render_messages(spec, {"who": 3})


def test_defaults_and_conditionals_render() -> None:
    spec = load_checked(REPO / "prompts" / "support-reply.yaml")
    friendly = render_messages(spec, {"customer_name": "Ana", "message": "Hi"})
    formal = render_messages(spec, {"customer_name": "Ana", "message": "Hi", "tone": "formal"})
    assert "formal register" not in friendly[0]["content"]
    assert "formal register" in formal[0]["content"]
    assert "Customer: Ana" in friendly[1]["content"]


def test_output_is_bounded(tmp_path: Path) -> None:
    text = GOOD.replace("Hello {{ who }}", "{% for i in range(100000) %}{{ who }}{% endfor %}")
    spec = load_checked(write(tmp_path, "greet", text))
    with pytest.raises(RenderError, match="exceeds"):
        render_messages(spec, {"who": "x" * 100}, max_chars=10_000)


def test_over_long_values_are_refused(tmp_path: Path) -> None:
    spec = load_checked(REPO / "prompts" / "support-triage.yaml")
    with pytest.raises(RenderError, match="longer than 4000"):
        render_messages(spec, {"message": "x" * 4001})


def test_cli_values_are_coerced_to_declared_types(tmp_path: Path) -> None:
    text = GOOD + "  n: {type: integer, required: false, default: 1}\n  on: {type: boolean, required: false}\n"
    spec = load_checked(write(tmp_path, "greet", text.replace("Hello {{ who }}", "{{ who }}{{ n }}{{ on }}")))
    assert coerce_cli_value(spec, "n", "3") == 3
    assert coerce_cli_value(spec, "on", "true") is True
    with pytest.raises(RenderError, match="expects integer"):
        coerce_cli_value(spec, "n", "three")
