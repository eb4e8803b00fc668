"""Data checks: malformed lines stop everything with file:line; warnings name each row's line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from llmops.cli.main import app
from llmops.errors import ConfigError, ValidationFailed
from llmops.finetune.dataset import build_examples
from llmops.finetune.rows import read_rows
from llmops.finetune.validation import check_data, pii_kinds

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()
WIDE = {"COLUMNS": "240"}  # no line wrapping in rich output, so file:line messages stay whole


def chat(user: str, answer: str) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]}


def test_malformed_lines_are_all_reported_with_file_and_line(tmp_path: Path, write_jsonl: Callable[..., Path]) -> None:
    path = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            chat("hi", "hello"),
            '{"messages": [',  # truncated JSON
            "[1, 2]",  # not an object
            {"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]},
            {"messages": [{"role": "user", "content": "no answer"}]},
            {"prompt": "neither shape"},
            {"variables": {"message": "x"}},  # no target
            {"variables": {}, "target": "t", "extra": 1},
        ],
    )
    with pytest.raises(ValidationFailed) as info:
        read_rows(path, display="data/bad.jsonl")
    by_line = {p.line: str(p) for p in info.value.problems}
    assert sorted(by_line) == [2, 3, 4, 5, 6, 7, 8]
    assert by_line[2].startswith("data/bad.jsonl:2: malformed JSON")
    assert "expected a JSON object" in by_line[3]
    assert "[messages.0.role]" in by_line[4]
    assert "no assistant message" in by_line[5]
    assert "'messages' (chat) or 'variables' and 'target'" in by_line[6]
    assert "[target]" in by_line[7]
    assert "[extra]: unknown field" in by_line[8]


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="data file not found"):
        read_rows(tmp_path / "nope.jsonl")
    (tmp_path / "blank.jsonl").write_text("\n\n")
    with pytest.raises(ConfigError, match="no rows"):
        read_rows(tmp_path / "blank.jsonl")


def test_fingerprint_ignores_formatting_but_not_content_or_order(
    tmp_path: Path, write_jsonl: Callable[..., Path]
) -> None:
    a = {"variables": {"message": "hi", "x": 1}, "target": "t"}
    b = {"target": "u", "variables": {"x": 2, "message": "yo"}}
    one = write_jsonl(tmp_path / "1.jsonl", [a, b])
    spaced = tmp_path / "2.jsonl"
    spaced.write_text(json.dumps(a, indent=None, separators=(" , ", " : ")) + "\n\n" + json.dumps(b) + "\n")
    assert read_rows(one).fingerprint == read_rows(spaced).fingerprint
    assert read_rows(write_jsonl(tmp_path / "3.jsonl", [b, a])).fingerprint != read_rows(one).fingerprint
    changed = {**a, "target": "T"}
    assert read_rows(write_jsonl(tmp_path / "4.jsonl", [changed, b])).fingerprint != read_rows(one).fingerprint


def test_each_warning_kind_names_its_line(
    tmp_path: Path, tiny_tokenizer: Any, write_jsonl: Callable[..., Path]
) -> None:
    train = write_jsonl(
        tmp_path / "train.jsonl",
        [
            chat("where is my parcel", "on its way"),  # 1
            chat("where is my parcel", "on its way"),  # 2 duplicate of 1
            chat("mail me at jane.doe@example.com", "ok"),  # 3 email
            chat("call +44 20 7946 0958 please", "ok"),  # 4 phone
            chat("my card 4111 1111 1111 1111 was charged", "ok"),  # 5 card (Luhn-valid)
            chat("hello", "   "),  # 6 empty answer
            "",  # 7 blank line
            chat("word " * 200, "long"),  # 8 too long
        ],
    )
    eval_ = write_jsonl(tmp_path / "eval.jsonl", [chat("where is my parcel", "different answer"), chat("new", "x")])
    tok = tiny_tokenizer
    train_rows, eval_rows = read_rows(train), read_rows(eval_)
    report = check_data(
        train_rows,
        build_examples(train_rows, tok, None, None),
        eval_rows,
        build_examples(eval_rows, tok, None, None),
        max_seq_len=128,
    )
    found = {(f.kind, f.problem.file.rsplit("/", 1)[-1], f.problem.line) for f in report.warnings}
    assert found == {
        ("duplicate", "train.jsonl", 2),
        ("pii", "train.jsonl", 3),
        ("pii", "train.jsonl", 4),
        ("pii", "train.jsonl", 5),
        ("empty", "train.jsonl", 6),
        ("empty", "train.jsonl", 7),
        ("too_long", "train.jsonl", 8),
        ("overlap", "eval.jsonl", 1),
    }
    assert report.counts() == {"empty": 2, "too_long": 1, "duplicate": 1, "overlap": 1, "pii": 3}
    messages = report.as_text()
    assert "same row as line 1" in messages and "same input as train line 1" in messages
    assert "email" in messages and "card" in messages and "phone" in messages
    split = report.split("train")
    assert split is not None and split.dropped_lines() == {6, 7, 8}


def test_pii_patterns() -> None:
    assert pii_kinds("write to a.b+c@mail.example.org") == {"email"}
    assert pii_kinds("ring 555-123-4567") == {"phone"}
    assert pii_kinds("(020) 7946 0958") == {"phone"}
    assert pii_kinds("5500-0000-0000-0004") == {"card"}
    # corpus-like numbers are not personal data: order ids, amounts, error codes, dates, short numbers
    for text in ("order #48213", "I paid $129.99", "error code E404", "on 2024-01-15", "in 12 days", "ticket 123456"):
        assert pii_kinds(text) == set(), text
    assert pii_kinds("4111 1111 1111 1112") == {"phone"} or pii_kinds("4111 1111 1111 1112") == set()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=9), min_size=13, max_size=19))
def test_card_numbers_are_found_only_when_luhn_valid(digits: list[int]) -> None:
    from llmops.finetune.validation import _luhn

    text = "card " + "".join(map(str, digits)) + " thanks"
    assert ("card" in pii_kinds(text)) == _luhn("".join(map(str, digits)))


def test_committed_example_data_is_clean() -> None:
    """The worked example's data has no warnings (the length check runs in the integration tests)."""
    for name in ("support-triage", "support-triage-skewed"):
        folder = REPO / "finetune" / "data" / name
        train, eval_, test = (read_rows(folder / f"{s}.jsonl") for s in ("train", "eval", "test"))
        report = check_data(train, None, eval_, None, test_rows=test)
        assert [s.split for s in report.splits] == ["train", "eval", "test"]
        assert report.warnings == [], report.as_text()


def test_a_test_row_seen_in_eval_is_an_overlap(tmp_path: Path, write_jsonl: Callable[..., Path]) -> None:
    rows = [{"variables": {"message": m}, "target": "x"} for m in ("a", "b", "c")]
    train = read_rows(write_jsonl(tmp_path / "train.jsonl", rows[:1]))
    eval_ = read_rows(write_jsonl(tmp_path / "eval.jsonl", rows[1:2]))
    test = read_rows(write_jsonl(tmp_path / "test.jsonl", [rows[2], rows[1], rows[0]]))
    report = check_data(train, None, eval_, None, test_rows=test)
    found = [(f.kind, f.problem.line, f.problem.message) for f in report.warnings]
    assert found == [
        ("overlap", 2, "same input as eval line 1"),
        ("overlap", 3, "same input as train line 1"),
    ]


def test_data_validate_cli_reports_lines_and_exit_codes(tmp_path: Path, write_jsonl: Callable[..., Path]) -> None:
    # a reference spec the package does not ship (7 pretraining steps): validation must not build it
    (tmp_path / "llmops.yaml").write_text("version: 1\nmodels:\n  reference:\n    steps: 7\n")
    good = write_jsonl(tmp_path / "good.jsonl", [{"variables": {"message": "hi"}, "target": "x"}])
    ok = runner.invoke(
        app,
        ["data", "validate", str(good), "--prompt", str(REPO / "prompts" / "support-triage.yaml"), "-w", str(tmp_path)],
        env={"LLMOPS_HOME": str(tmp_path / "home"), **WIDE},
    )
    assert ok.exit_code == 0, ok.output
    assert "no warnings" in ok.output and "reference model is not built" in ok.output
    assert read_rows(good).fingerprint in ok.output

    warn = write_jsonl(tmp_path / "warn.jsonl", [chat("a", "b"), chat("a", "b"), chat("me@x.io", "c")])
    result = runner.invoke(app, ["data", "validate", str(warn), "-w", str(tmp_path)], env=WIDE)
    assert result.exit_code == 1, result.output
    assert f"{warn}:2: same row as line 1 [duplicate]" in result.output
    assert f"{warn}:3: possible personal data: email [pii]" in result.output

    bad = write_jsonl(tmp_path / "bad.jsonl", [chat("a", "b"), "{oops"])
    failed = runner.invoke(app, ["data", "validate", str(bad), "-w", str(tmp_path)], env=WIDE)
    assert failed.exit_code == 2
    assert f"{bad}:2: malformed JSON" in failed.output

    helped = runner.invoke(app, ["data", "validate", "--help"])
    assert "Example:" in helped.output


def test_data_validate_reads_a_job_file_and_flags_a_test_row_seen_in_eval(
    tmp_path: Path, write_jsonl: Callable[..., Path]
) -> None:
    (tmp_path / "llmops.yaml").write_text("version: 1\n")
    rows = [{"variables": {"message": m}, "target": "x"} for m in ("a", "b", "c")]
    (tmp_path / "d").mkdir()
    write_jsonl(tmp_path / "d" / "train.jsonl", rows[:1])
    write_jsonl(tmp_path / "d" / "eval.jsonl", rows[1:2])
    write_jsonl(tmp_path / "d" / "test.jsonl", [rows[2], rows[1]])
    job = tmp_path / "job.yaml"
    job.write_text(
        "base_model: reference\ntrain: d/train.jsonl\neval: d/eval.jsonl\ntest: d/test.jsonl\n"
        "prompt: support-triage@production\nadapter: a\ntraining: {max_steps: 1, max_seq_len: 64}\n"
    )
    prompt = str(REPO / "prompts" / "support-triage.yaml")
    env = {"LLMOPS_HOME": str(tmp_path / "home"), **WIDE}
    result = runner.invoke(app, ["data", "validate", str(job), "--prompt", prompt, "-w", str(tmp_path)], env=env)
    assert result.exit_code == 1, result.output
    assert "d/test.jsonl:2: same input as eval line 1 [overlap]" in result.output
    assert "max_seq_len 64" in result.output  # the job's limit
    # the default reference model ships with the package: token lengths are checked without a build
    assert "token lengths not checked" not in result.output
