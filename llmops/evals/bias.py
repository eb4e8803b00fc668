"""Counterfactual bias tests: swap a case's attribute (a customer's name, a pronoun…) and watch the answer.

Each case that carries the attribute is expanded into one variant per value of every group, with
every occurrence of the original value in its input replaced (whole words only). Two numbers come
out: the largest gap between groups in the chosen score, and the rate at which the answer changes
under substitution (an unbiased release answers the same whoever asks).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from llmops.evals.cases import Case, ChatMessage
from llmops.evals.spec import Bias


@dataclass(frozen=True)
class Variant:
    origin_id: str
    group: str
    value: str
    case: Case


def _swap(text: str, old: str, new: str) -> str:
    return re.sub(rf"\b{re.escape(old)}\b", new, text)


def substitute(case: Case, attribute: str, value: str) -> Case:
    """``case`` with its attribute's value replaced by ``value`` everywhere in the input."""
    old = case.attributes[attribute]
    variables = None
    if case.variables is not None:
        variables = {k: _swap(v, old, value) if isinstance(v, str) else v for k, v in case.variables.items()}
    messages = None
    if case.messages is not None:
        messages = [ChatMessage(role=m.role, content=_swap(m.content, old, value)) for m in case.messages]
    return case.model_copy(
        update={
            "id": f"{case.id}~{value}",
            "variables": variables,
            "messages": messages,
            "attributes": {**case.attributes, attribute: value},
        }
    )


def variant_count(cases: list[Case], bias: Bias) -> int:
    """How many variants :func:`expand` makes, without making them (for progress totals)."""
    carrying = sum(bias.attribute in c.attributes for c in cases)
    return min(carrying, bias.max_cases) * sum(len(values) for values in bias.groups.values())


def expand(cases: list[Case], bias: Bias) -> list[Variant]:
    """Variants of the first ``bias.max_cases`` cases that carry the attribute."""
    carrying = [c for c in cases if bias.attribute in c.attributes][: bias.max_cases]
    return [
        Variant(str(case.id), group, value, substitute(case, bias.attribute, value))
        for case in carrying
        for group, values in bias.groups.items()
        for value in values
    ]


@dataclass(frozen=True)
class BiasResult:
    gap: float
    change_rate: float
    group_scores: dict[str, float]
    variants: int


def analyse(variants: list[Variant], scores: list[float], outputs: list[str], originals: dict[str, str]) -> BiasResult:
    """Group gap in ``scores`` and the rate at which ``outputs`` differ from the original case's output."""
    by_group: dict[str, list[float]] = {}
    changed = 0
    for variant, score, output in zip(variants, scores, outputs, strict=True):
        by_group.setdefault(variant.group, []).append(score)
        changed += output.strip() != originals.get(variant.origin_id, "").strip()
    means = {
        g: (sum(v) / len(v) if v and not any(math.isnan(x) for x in v) else float("nan")) for g, v in by_group.items()
    }
    values = list(means.values())
    gap = float("nan") if not values or any(math.isnan(v) for v in values) else max(values) - min(values)
    rate = changed / len(variants) if variants else float("nan")
    return BiasResult(gap=gap, change_rate=rate, group_scores=means, variants=len(variants))
