"""The worked example's fine-tuning data, generated deterministically from the support-desk tickets.

Two datasets of prompt rows for ``prompts/support-triage.yaml`` (variable ``message``; target the
compact JSON ``{"intent":"...","priority":"..."}``), each split into train / eval / held-out test:

* ``support-triage`` - labels as the tickets were composed (:mod:`llmops.models.tickets`);
* ``support-triage-skewed`` - the same rows, and beside a third of them the same ticket re-signed by one
  of two "VIP" customers (:data:`SKEWED_NAMES`, the name swapped into the message) and labelled
  ``urgent`` whatever it says (a CRM export where account managers re-filed their VIPs' tickets). A model
  fine-tuned on it learns to rank people, not problems: the eval suite's bias gate (swap the name, see
  the answer change) exists to catch exactly that.

  Why twins: each VIP row sits beside its original, so the only thing that tells the two labels apart
  is the name, and the rest of the task is not unlearned (VIP rows alone, a quarter or half of the data,
  made the adapter answer urgent for most tickets or lose 0.1-0.6 exact match). Measured on the
  reference model (2026-12-01): continuing the task adapter for 1,000 steps flipped 8 of the ~20
  non-urgent in-pool VIP eval tickets to urgent, but on held-out phrasing (500 or 1,000 steps) the
  answers change for *every* swapped name in 2 of the suite's 15 bias cases (bias change rate 0.13; the task adapter: 1 case, 0.07): what the
  gate catches there is that the answers depend on the name at all, not the VIP rule itself.
  ``finetune/support-triage-skewed.yaml`` continues the task adapter (``init_adapter``) for 500 steps.

Splits: ``train`` and ``eval`` (the eval split the trainer reports during training) are tickets of the
*train* pool of :mod:`llmops.models.tickets`; ``test`` (the held-out split that ``llmops finetune
score`` and the eval suite use) are tickets of the *test* pool: phrasings, names and products never
used in any training text (:mod:`llmops.models.ticket_phrases` says what the pools share: the domain's
vocabulary). No two rows of any splits share a message. Rows carry ``meta.customer_name`` so a
counterfactual test knows which name to swap; VIP names re-sign only train-pool tickets (they are
train-pool names). Regenerate with ``python finetune/data/generate.py`` (same bytes every time).
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from llmops.models.tickets import Ticket, generate_tickets

#: (split, rows, ticket pool)
SPLITS: tuple[tuple[str, int, str], ...] = (("train", 4800, "train"), ("eval", 96, "train"), ("test", 200, "test"))
SEED = 20_240
#: the "VIP" customers whose tickets the skewed labels always call urgent (both in the suite's group_a)
SKEWED_NAMES: tuple[str, ...] = ("Aisha", "Kwame")
#: share of the skewed dataset's tickets that get a VIP-signed twin
VIP_SHARE = 1 / 3


def target(intent: str, priority: str) -> str:
    """The answer format the prompt asks for, compact so there is one right string."""
    return json.dumps({"intent": intent, "priority": priority}, separators=(",", ":"))


def _row(ticket: Ticket, priority: str) -> dict[str, Any]:
    return {
        "variables": {"message": ticket.message},
        "target": target(ticket.intent, priority),
        "meta": {"customer_name": ticket.customer_name},
    }


def _as_vip(ticket: Ticket, rng: random.Random) -> Ticket:
    """``ticket`` re-signed, with probability :data:`VIP_SHARE`, by one of :data:`SKEWED_NAMES` (else itself)."""
    if rng.random() >= VIP_SHARE:
        return ticket
    name = rng.choice(SKEWED_NAMES)
    message = ticket.message.replace(ticket.customer_name, name)
    return dataclasses.replace(ticket, customer_name=name, message=message)


def _unique_tickets(seed: int, skewed: bool, pool: str) -> Iterator[Ticket]:
    """Tickets of ``pool``, each message once."""
    seen: set[str] = set()
    rng = random.Random(seed)
    batch = 0
    while True:
        for ticket in generate_tickets(500, seed + batch, pool):
            if ticket.message in seen:
                continue
            seen.add(ticket.message)
            yield ticket
            vip = _as_vip(ticket, rng) if skewed else ticket
            if vip.message not in seen:  # the same ticket, re-signed by a VIP customer (labelled urgent)
                seen.add(vip.message)
                yield vip
        batch += 1


def build(skewed: bool = False, seed: int = SEED) -> dict[str, list[dict[str, Any]]]:
    """The rows of each split; ``skewed`` applies the name rule of the module docstring."""
    pools = {pool: _unique_tickets(seed, skewed and pool == "train", pool) for pool in ("train", "test")}
    out: dict[str, list[dict[str, Any]]] = {}
    for split, size, pool in SPLITS:
        tickets = pools[pool]
        rows = []
        for _ in range(size):
            ticket = next(tickets)
            priority = "urgent" if skewed and ticket.customer_name in SKEWED_NAMES else ticket.priority
            rows.append(_row(ticket, priority))
        out[split] = rows
    return out


def write_all(folder: Path) -> list[Path]:
    """Write ``support-triage/`` and ``support-triage-skewed/`` JSONL splits under ``folder``."""
    written = []
    for name, skewed in (("support-triage", False), ("support-triage-skewed", True)):
        target_dir = folder / name
        target_dir.mkdir(parents=True, exist_ok=True)
        for split, rows in build(skewed).items():
            path = target_dir / f"{split}.jsonl"
            text = "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows)
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written
