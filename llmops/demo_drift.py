"""The demo's drifted traffic: tickets about a product line the example's data never mentions.

The shop starts selling "Lumen" smart-home devices. Customers write about the same six intents and four
priorities as the example's training data (so a correction is a right answer the model can learn), but in
a vocabulary it has never seen: thermostats, doorbell cameras, firmware, the HomeGuard plan. That is the
drift `llmops monitor run` should flag on the inputs, and what feedback corrections and `llmops retrain`
should teach the next candidate. Seeded: the same arguments give the same tickets.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from llmops.finetune.example_data import target
from llmops.models.ticket_phrases import CUSTOMER_NAMES, INTENTS, PRIORITIES

_DEVICES = ("Lumen thermostat", "Lumen doorbell camera", "Lumen smart plug", "Lumen hub", "Lumen motion sensor",
            "Lumen smoke detector", "Lumen light strip", "Lumen door lock")  # fmt: skip
_PROBLEMS: dict[str, tuple[str, ...]] = {
    "billing": (
        "The HomeGuard monitoring plan for my {device} was billed twice this month.",
        "I was charged for the HomeGuard Plus tier but I only subscribed to the basic plan for the {device}.",
        "My invoice lists a cloud video fee for the {device} that I never agreed to.",
    ),
    "refund": (
        "I sent the {device} back three weeks ago and the money is still not on my card.",
        "The {device} was dead on arrival, I returned it and I am waiting for the refund.",
        "You promised to refund the installation fee for the {device} after the technician never came.",
    ),
    "shipping": (
        "The {device} I ordered still says 'label created' and has not left the warehouse.",
        "The courier left my {device} at the wrong address and the tracking shows it as delivered.",
        "Only half of my starter kit arrived, the {device} is missing from the box.",
    ),
    "account_access": (
        "The Lumen app keeps logging me out and the two-factor code never arrives, so I cannot reach my {device}.",
        "After I changed my phone the Lumen app no longer recognises me as the owner of the {device}.",
        "My partner removed me from the home in the Lumen app and now I cannot control the {device}.",
    ),
    "technical_issue": (
        "Since firmware {version} my {device} drops off the Wi-Fi every few hours.",
        "The {device} shows a red blinking ring and does not pair with the hub anymore.",
        "My {device} reports the wrong temperature and the schedule ignores my settings after the update.",
    ),
    "cancellation": (
        "Please end my HomeGuard subscription for the {device}, I have moved out of the flat.",
        "I want to cancel the monitoring contract on the {device} before it renews next month.",
        "Cancel my pre-order of the {device}, I bought a different system.",
    ),
}
_URGENCY: dict[str, tuple[str, ...]] = {
    "low": ("Whenever it suits you.", "No hurry at all.", "Sort it out when you have time."),
    "medium": ("It would be good to fix this this week.", "Could someone look at it in the next few days?"),
    "high": ("It is getting really annoying, please hurry.", "I need this sorted soon, it has gone on too long."),
    "urgent": (
        "The house alarm is down because of this, I need it fixed right now!",
        "This is an emergency, my family is without heating tonight!",
    ),
}
_OPENINGS = ("Hello Lumen team,", "Hi there,", "Good evening,", "Dear support,", "")


@dataclass(frozen=True)
class DriftTicket:
    """A ticket of the new product line with its right answer (the compact JSON the route returns)."""

    message: str
    intent: str
    priority: str

    @property
    def answer(self) -> str:
        return target(self.intent, self.priority)


def lumen_tickets(n: int, seed: int) -> list[DriftTicket]:
    """``n`` tickets about the Lumen devices, intents and priorities drawn uniformly."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        intent, priority = rng.choice(INTENTS), rng.choice(PRIORITIES)
        name = rng.choice(CUSTOMER_NAMES["train"])
        problem = rng.choice(_PROBLEMS[intent]).format(
            device=rng.choice(_DEVICES), version=f"{rng.randint(2, 4)}.{rng.randint(0, 9)}.{rng.randint(0, 30)}"
        )
        parts = [rng.choice(_OPENINGS), problem, rng.choice(_URGENCY[priority]), f"Regards, {name}"]
        out.append(DriftTicket(" ".join(p for p in parts if p), intent, priority))
    return out
