"""The reference model's pretraining corpus: the support desk's conversations, routing notes, glossary and prose.

Why it exists: no model or dataset can be downloaded here, so the reference base model is pretrained
on this corpus. Its tickets come from the *train* pool of :mod:`llmops.models.tickets` only: no
phrasing, name or product of the held-out test pool appears in any text a model here trains on.

What it is made of, and why (measured in ``bench/reference_tradeoff.py``; the table is in README.md):

* **conversations** (~30%): a ticket and the agent's reply, which names the team and the urgency;
* **routing notes** (~35%): a ticket, where it went and how urgent it was, and tags with the label
  words (``Tags: intent=refund priority=urgent``), so the tokenizer has tokens for the labels and the
  model has read them next to tickets;
* **a glossary** (:data:`GLOSSARY_SHARE`): the domain's words by team and the words of urgency
  (:data:`llmops.models.glossary.DOMAIN_WORDS`), as a real base model knows what "firmware" or
  "authenticator" are about. Words only, never a sentence of the test pool;
* **help-centre articles** (the rest).

**The corpus never shows the triage answer format** (JSON such as ``{"intent": ..., "priority": ...}``;
no ``{`` or ``}`` appears at all), so the base model cannot answer triage prompts until it is
fine-tuned. That is what makes the fine-tune measurable.

Everything is drawn from one seeded :class:`random.Random`: the same ``(n, seed)`` gives the same list.
"""

from __future__ import annotations

import random

from llmops.models import glossary
from llmops.models import ticket_phrases as tp
from llmops.models.chat_template import BOS, EOS, render_chat
from llmops.models.tickets import Ticket, generate_tickets

#: share of documents that are glossary entries
GLOSSARY_SHARE = 0.25
ROUTING_SHARE = 0.35
PROSE_SHARE = 0.10

_ARTICLES: tuple[str, ...] = (
    "Help centre: refunds. A refund is issued once the returned item reaches our warehouse. It takes three to "
    "five business days to appear on the original payment method.",
    "Help centre: delivery. Most parcels arrive within two to four business days. Each order page shows the "
    "carrier and the latest scan of your parcel.",
    "Help centre: payments. We accept cards and bank transfers. Each month you receive a statement by email "
    "listing every payment on your account.",
    "Help centre: your account. If you forget your password, use the reset link on the sign-in page. After "
    "five failed attempts the account is paused for fifteen minutes.",
    "Help centre: apps and devices. Keep the app up to date. Restarting the device and signing out and back in "
    "solves most problems with syncing.",
    "Help centre: plans. You can move between the Basic, Plus and Premium plans at any time. "
    "Changes apply from the next billing period.",
    "Agent handbook. Greet the customer by name, restate the problem in one sentence, say what you did, and "
    "tell them what happens next. Keep replies short and friendly.",
    "Agent handbook. Customers who say their problem is urgent, or who have written before, are answered first. "
    "Thank customers for their patience when a case took long.",
)


_SYSTEM_PROMPTS = (
    "You are a friendly support-desk assistant for Northwind Goods. Answer the customer politely and concisely.",
    "You are a helpful customer support agent.",
    "You work on the support desk of an online electronics shop. Be kind and specific.",
)
_THANKS = ("Thank you so much!", "Great, thanks for the quick help.", "Thanks, that solves it.")
_THANKS_REPLIES = ("You are welcome! Have a great day.", "Glad I could help. Take care!", "Happy to help!")
_KEYWORD_FORM = 'Keyword "{word}": routed to the {team} team.'
_GLOSSARY_FORMS = (
    "Glossary, {team} team: {words}.",
    "Words that mean a ticket belongs to the {team} team: {words}.",
    "The {team} team handles tickets about {words}.",
)
_URGENCY_FORMS = (
    "Urgency {level}: tickets that say {words}.",
    "A ticket is {level} when the customer writes {words}.",
)


def _conversation(rng: random.Random, ticket: Ticket) -> str:
    messages: list[dict[str, str]] = []
    if rng.random() < 0.5:
        messages.append({"role": "system", "content": rng.choice(_SYSTEM_PROMPTS)})
    messages += [
        {"role": "user", "content": ticket.message},
        {"role": "assistant", "content": ticket.reply},
    ]
    if rng.random() < 0.15:
        messages += [
            {"role": "user", "content": rng.choice(_THANKS)},
            {"role": "assistant", "content": rng.choice(_THANKS_REPLIES)},
        ]
    return render_chat(messages)


def _routing_note(ticket: Ticket) -> str:
    """Where a ticket went, in words and as tags with the label words (never the answer's JSON)."""
    team = tp.TEAMS[ticket.intent]
    return (
        f'{BOS}Ticket from {ticket.customer_name}: "{ticket.message}"\nRouted to the {team} team. '
        f"Urgency: {ticket.priority}.\nTags: intent={ticket.intent} priority={ticket.priority}{EOS}\n"
    )


def _sample(rng: random.Random, words: tuple[str, ...], k: int) -> str:
    chosen = rng.sample(words, min(k, len(words)))
    return ", ".join(chosen[:-1]) + " and " + chosen[-1] if len(chosen) > 1 else chosen[0]


def _glossary(rng: random.Random) -> str:
    """A glossary line: the words of one team (intent) or of one urgency level."""
    if rng.random() < 0.25:
        level = rng.choice(tp.PRIORITIES)
        words = _sample(rng, glossary.URGENCY_WORDS[level], rng.randint(3, 6))
        return f"{BOS}{rng.choice(_URGENCY_FORMS).format(level=level, words=words)}{EOS}\n"
    intent = rng.choice(tp.INTENTS)
    team = tp.TEAMS[intent]
    if rng.random() < 0.5:  # the router's keyword index: one word, where it goes, its tag
        line = _KEYWORD_FORM.format(word=rng.choice(glossary.DOMAIN_WORDS[intent]), team=team)
    else:
        words = _sample(rng, glossary.DOMAIN_WORDS[intent], rng.randint(3, 7))
        line = rng.choice(_GLOSSARY_FORMS).format(team=team, words=words)
    return f"{BOS}{line} Tag: intent={intent}{EOS}\n"


def pretraining_texts(n: int, seed: int) -> list[str]:
    """``n`` pretraining documents with special tokens in place, in the mix of the module docstring."""
    rng = random.Random(seed)
    tickets = generate_tickets(n, seed + 1, pool="train")
    out = []
    for ticket in tickets:
        draw = rng.random()
        if draw < GLOSSARY_SHARE:
            out.append(_glossary(rng))
        elif draw < GLOSSARY_SHARE + ROUTING_SHARE:
            out.append(_routing_note(ticket))
        elif draw < GLOSSARY_SHARE + ROUTING_SHARE + PROSE_SHARE:
            out.append(f"{BOS}{rng.choice(_ARTICLES)}{EOS}\n")
        else:
            out.append(_conversation(rng, ticket))
    return out
