"""Seeded synthetic gateway traffic of the worked example, for the monitoring tests and benchmarks.

In-domain inputs are support tickets of :mod:`llmops.models.tickets` (billing, refunds, shipping,
account access, technical issues, cancellations; by default of the train pool, as the example's
training rows are); their right answers are the
example's compact JSON (:func:`llmops.finetune.example_data.target`). Out-of-domain inputs are tickets
of other desks, a travel agency and a clinic's appointment line, written in the same style (greeting,
urgency cue, signature), so that drift is in what is asked, not in how. Same arguments, same output.
"""

from __future__ import annotations

import json
import random

from llmops.finetune.example_data import target
from llmops.models.ticket_phrases import CUSTOMER_NAMES
from llmops.models.tickets import Ticket, generate_tickets

_URGENCY = (
    "No rush on this.", "Could you look into it this week?", "Please fix this as soon as possible.",
    "URGENT: I need this resolved today!", "Please get back to me when you can.", "",
)  # fmt: skip
_CITIES = ("Lisbon", "Kyoto", "Nairobi", "Oslo", "Lima", "Hanoi", "Toronto", "Marrakesh", "Sydney", "Prague")
_DOCTORS = ("Dr. Okafor", "Dr. Lindqvist", "Dr. Haddad", "Dr. Moreau", "Dr. Tanaka", "Dr. Alvarez")
_OUT_OF_DOMAIN = (
    "My flight to {city} on {date} was moved by {hours} hours and I will miss my connecting train.",
    "I booked {nights} nights at a hotel in {city} but the reservation does not show up in the booking app.",
    "Can I add a second checked suitcase to my return flight from {city}?",
    "The rental car I reserved in {city} for {date} was given to someone else at the counter.",
    "I would like to upgrade my seat to business class for the trip to {city} on {date}.",
    "My travel insurance does not list my daughter, who flies with me to {city}.",
    "I need to reschedule my appointment with {doctor} on {date}; I have a fever and cannot come in.",
    "Could {doctor} renew my blood pressure prescription? I have {nights} tablets left.",
    "The clinic sent me lab results for another patient instead of my blood test from {date}.",
    "Is {doctor} available for a vaccination appointment for my son next week?",
    "My referral to the dermatology department expired before I got a slot with {doctor}.",
    "I was told to fast before my scan on {date}; can I still drink water in the morning?",
)
_GREETINGS = ("Hi!", "Hello!", "Good morning.", "Hey!", "")


def in_domain(n: int, seed: int, pool: str = "train") -> list[Ticket]:
    """``n`` support tickets of the example domain, uniform over intents and priorities, distinct messages;
    ``pool="test"`` draws the held-out phrasing the eval suite's cases are written in."""
    tickets: list[Ticket] = []
    seen: set[str] = set()
    batch = 0
    while len(tickets) < n:
        for ticket in generate_tickets(max(n, 100), seed * 1000 + batch, pool):
            if ticket.message not in seen and len(tickets) < n:
                seen.add(ticket.message)
                tickets.append(ticket)
        batch += 1
    return tickets


def out_of_domain(n: int, seed: int) -> list[str]:
    """``n`` distinct tickets for a travel-booking desk and a clinic's appointment line."""
    rng = random.Random(seed)
    texts: list[str] = []
    seen: set[str] = set()
    while len(texts) < n:
        name = rng.choice(CUSTOMER_NAMES["train"])
        body = rng.choice(_OUT_OF_DOMAIN).format(
            city=rng.choice(_CITIES), doctor=rng.choice(_DOCTORS), date=f"{rng.randint(1, 28)} May",
            hours=rng.randint(2, 9), nights=rng.randint(2, 14),
        )  # fmt: skip
        parts = [rng.choice(_GREETINGS), f"This is {name}." if rng.random() < 0.4 else "", body,
                 rng.choice(_URGENCY)]  # fmt: skip
        text = " ".join(p for p in parts if p)
        signoff = rng.choice(("", f"Thanks, {name}", f"Best, {name}", f"- {name}"))
        text += f"\n{signoff}" if signoff else ""
        if text not in seen:
            seen.add(text)
            texts.append(text)
    return texts


def answers(tickets: list[Ticket], seed: int, *, urgent_share: float | None = None) -> list[str]:
    """The right answers to ``tickets``; with ``urgent_share``, a release that answers ``urgent`` that often
    (in expectation): non-urgent tickets are flipped to urgent at random (never the other way)."""
    rng = random.Random(seed)
    base = sum(t.priority == "urgent" for t in tickets) / max(len(tickets), 1)
    flip = 0.0
    if urgent_share is not None and base < 1:
        flip = min(1.0, max(0.0, (urgent_share - base) / (1 - base)))
    out = []
    for t in tickets:
        priority = "urgent" if t.priority != "urgent" and rng.random() < flip else t.priority
        out.append(target(t.intent, priority))
    return out


def latencies_ms(n: int, seed: int, *, median_ms: float = 300.0) -> list[float]:
    """``n`` request latencies, log-normal around ``median_ms``."""
    rng = random.Random(seed)
    return [median_ms * rng.lognormvariate(0.0, 0.35) for _ in range(n)]


def priority_share(outputs: list[str], priority: str = "urgent") -> float:
    """Share of ``outputs`` whose JSON ``priority`` is ``priority`` (what the detection figures measure)."""
    found = 0
    for text in outputs:
        try:
            found += json.loads(text).get("priority") == priority
        except (ValueError, AttributeError):
            continue
    return found / max(len(outputs), 1)
