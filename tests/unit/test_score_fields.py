"""`llmops finetune score`'s per-field accuracy: what a user reads next to exact match."""

from __future__ import annotations

from llmops.finetune.scoring import ScoreResult


def test_field_accuracy_counts_each_field_and_wrong_answers() -> None:
    targets = ['{"intent":"refund","priority":"low"}'] * 4
    answers = [
        '{"intent":"refund","priority":"low"}',  # both right
        '{"intent":"refund","priority":"high"}',  # intent only
        '{"intent":"billing","priority":"low","extra":1}',  # priority only; extra field ignored
        "not json at all",  # wrong on every field
    ]
    result = ScoreResult(exact_match=0.25, answers=answers, targets=targets)
    assert result.field_accuracy() == {"intent": 0.5, "priority": 0.5}


def test_field_accuracy_is_empty_for_plain_text_targets() -> None:
    result = ScoreResult(exact_match=1.0, answers=["hello"], targets=["hello"])
    assert result.field_accuracy() == {}
    assert ScoreResult(exact_match=0.0, answers=["[1]"], targets=["[1]"]).field_accuracy() == {}
