"""Support tickets composed from one pool of :mod:`llmops.models.ticket_phrases`, with their labels.

A ticket is a greeting (or none), maybe an introduction, the problem (in its own words or a shared
domain term in a frame), the urgency (said outright, implied by a consequence, or not said at all),
maybe context and a secondary problem, and a sign-off; some have a typo. Every ticket names its writer
(in the introduction or the sign-off), so a counterfactual test can swap the name.

:attr:`Ticket.parts` records which phrasing of which family and pool each part came from
(``"problem:billing:test:3"``), so tests can prove the pools never meet.

Everything is drawn from one seeded :class:`random.Random`: the same arguments give the same tickets.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from llmops.models import ticket_phrases as tp

POOLS: tuple[str, ...] = ("train", "test")
#: share of problems said as a shared domain term in a frame (the rest in the pool's own sentences)
TERM_SHARE = 0.5
#: share of tickets with urgency (low, high, urgent) that imply it by a consequence instead of saying it
CONSEQUENCE_SHARE = 1 / 3
#: share of ``medium`` tickets that say nothing about urgency
SILENT_MEDIUM_SHARE = 0.5
SECONDARY_SHARE = 0.15
TYPO_SHARE = 0.15
REPLY_URGENCY: dict[str, str] = {"low": "low", "medium": "normal", "high": "high", "urgent": "urgent"}


@dataclass(frozen=True)
class Ticket:
    """One support ticket: the customer's message, its labels, an agent's reply and its parts."""

    customer_name: str
    message: str
    intent: str
    priority: str
    reply: str
    pool: str
    parts: tuple[str, ...]


def _slots(rng: random.Random, pool: str) -> dict[str, str]:
    return {
        "product": rng.choice(tp.PRODUCTS[pool]),
        "plan": rng.choice(tp.PLANS[pool]),
        "order": f"#{rng.randint(10000, 99999)}",
        "amount": f"{rng.randint(5, 400)}.{rng.randint(0, 99):02d}",
        "days": str(rng.randint(2, 30)),
        "code": f"E{rng.randint(100, 999)}",
    }


def _pick(rng: random.Random, family: str, options: tuple[str, ...], parts: list[str]) -> str:
    index = rng.randrange(len(options))
    parts.append(f"{family}:{index}")
    return options[index]


def _problem(rng: random.Random, intent: str, pool: str, parts: list[str]) -> str:
    if rng.random() < TERM_SHARE:
        term = _pick(rng, f"term:{intent}", tp.DOMAIN_TERMS[intent], parts)
        return _pick(rng, f"frame:{pool}", tp.PROBLEM_FRAMES[pool], parts).format(term=term)
    return _pick(rng, f"problem:{intent}:{pool}", tp.PROBLEM_SENTENCES[intent][pool], parts)


def _urgency(rng: random.Random, priority: str, pool: str, parts: list[str]) -> str:
    """A sentence that says ``priority`` (a shared cue in a pool's frame), or "" for a silent ``medium``."""
    if priority == "medium" and rng.random() < SILENT_MEDIUM_SHARE:
        return ""
    if priority != "medium" and rng.random() < CONSEQUENCE_SHARE:
        cue = _pick(rng, f"consequence:{priority}", tp.CONSEQUENCE_CUES[priority], parts)
        frame = _pick(rng, f"cframe:{pool}", tp.CONSEQUENCE_FRAMES[pool], parts)
    else:
        cue = _pick(rng, f"urgency:{priority}", tp.URGENCY_CUES[priority], parts)
        frame = _pick(rng, f"uframe:{pool}", tp.URGENCY_FRAMES[pool], parts)
    sentence = frame.format(cue=cue)
    return sentence[0].upper() + sentence[1:]


def _typo(rng: random.Random, text: str, keep: str) -> str:
    """``text`` with two neighbouring letters of one longer word swapped (never in ``keep``)."""
    words = [m for m in re.finditer(r"[a-z]{5,}", text) if m.group() not in keep]
    if not words:
        return text
    word = rng.choice(words)
    i = rng.randrange(word.start() + 1, word.end() - 2)
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def compose(rng: random.Random, pool: str = "train") -> Ticket:
    """One ticket of ``pool``; intent and priority drawn uniformly."""
    if pool not in POOLS:
        raise ValueError(f"unknown pool {pool!r}; expected one of {', '.join(POOLS)}")
    parts: list[str] = []
    name = _pick(rng, f"name:{pool}", tp.CUSTOMER_NAMES[pool], parts)
    intent = rng.choice(tp.INTENTS)
    priority = rng.choice(tp.PRIORITIES)
    slots = _slots(rng, pool) | {"name": name}
    short = rng.random() < 0.2
    body = [_problem(rng, intent, pool, parts)]
    urgency = _urgency(rng, priority, pool, parts)
    if urgency:
        body.insert(0 if rng.random() < 0.3 else 1, urgency)
    if not short and rng.random() < 0.25:
        body.insert(rng.randint(0, len(body)), _pick(rng, f"context:{pool}", tp.CONTEXT_SENTENCES[pool], parts))
    if not short and rng.random() < SECONDARY_SHARE:
        other = rng.choice([i for i in tp.INTENTS if i != intent])
        aside = _pick(rng, f"problem:{other}:{pool}", tp.PROBLEM_SENTENCES[other][pool], parts)
        frame = _pick(rng, f"secondary:{pool}", tp.SECONDARY_FRAMES[pool], parts)
        cue = _pick(rng, "aside", tp.ASIDE_CUES, parts)
        lowered = aside if aside[:2] in ("I ", "I'") else aside[0].lower() + aside[1:]
        body.append(frame.format(cue=cue, problem=lowered))
    head = []
    if not short and rng.random() < 0.75:
        head.append(_pick(rng, f"greeting:{pool}", tp.GREETINGS[pool], parts))
    introduced = rng.random() < 0.35
    if introduced:
        head.append(_pick(rng, f"intro:{pool}", tp.INTRODUCTIONS[pool], parts))
    text = " ".join(head + body)
    if not introduced or rng.random() < 0.5:
        text += "\n" + _pick(rng, f"signoff:{pool}", tp.SIGNOFFS[pool], parts)
    message = text.format(**slots)
    if rng.random() < TYPO_SHARE:
        message = _typo(rng, message, keep=name)
        parts.append(f"typo:{pool}:0")
    return Ticket(name, message, intent, priority, _reply(rng, name, intent, priority), pool, tuple(parts))


def _reply(rng: random.Random, name: str, intent: str, priority: str) -> str:
    team = tp.TEAMS[intent]
    agent = rng.choice(tp.AGENT_NAMES)
    return (
        f"Hi {name},\nThank you for your message. I have passed it to our {team} team with "
        f"{REPLY_URGENCY[priority]} urgency, and they will get back to you.\nBest regards, {agent}"
    )


def generate_tickets(n: int, seed: int, pool: str = "train") -> list[Ticket]:
    """``n`` tickets of ``pool``, the same for the same arguments."""
    rng = random.Random(f"{pool}:{seed}")
    return [compose(rng, pool) for _ in range(n)]
