"""A deterministic support-desk domain: customer tickets, agent replies and help-centre prose.

Why it exists: no model or dataset can be downloaded here, so the reference base model is pretrained
on this corpus, and the worked example (prompts, fine-tune, evals) draws its data from it too.

Two properties matter to the rest of the project and are tested:

* **Intent and priority are inferable from the message text.** Every message holds at least one cue
  phrase of its intent (:data:`INTENT_CUES`) and one of its priority (:data:`PRIORITY_CUES`), and no
  cue of any other intent or priority; names, products and slots never contain a cue. A fine-tune can
  therefore learn the triage task exactly, and :func:`infer_intent` / :func:`infer_priority` recover
  the labels from text alone.
* **The pretraining corpus never shows the triage answer format** (JSON such as
  ``{"intent": ..., "priority": ...}``; no ``{`` or ``}`` appears at all), so the base model cannot
  answer triage prompts until it is fine-tuned. That is what makes the fine-tune measurable.

Everything is drawn from one seeded :class:`random.Random`: the same ``(n, seed)`` gives the same list.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from llmops.models.chat_template import BOS, EOS, render_chat

INTENTS: tuple[str, ...] = ("billing", "refund", "shipping", "account_access", "technical_issue", "cancellation")
PRIORITIES: tuple[str, ...] = ("low", "medium", "high", "urgent")

CUSTOMER_NAMES: tuple[str, ...] = (
    "Aisha", "Mateo", "Mei", "Olumide", "Priya", "Lars", "Fatima", "Hiroshi", "Sofia", "Kwame",
    "Ingrid", "Diego", "Zainab", "Dmitri", "Amara", "Liam", "Yuki", "Carlos", "Nadia", "Arjun",
    "Emma", "Tariq", "Chloe", "Jamal", "Ana", "Wei", "Olga", "Kofi", "Isabella", "Rahul",
    "Leila", "Noah", "Siobhan", "Tomasz", "Ngozi", "Ethan", "Mariam", "Jin", "Lucia", "Omar",
    "Freya", "Sipho",
)  # fmt: skip
AGENT_NAMES: tuple[str, ...] = ("Sam", "Alex", "Robin", "Jordan", "Kim", "Taylor")
PRODUCTS: tuple[str, ...] = (
    "Nimbus speaker", "Orbit smartwatch", "Lumen desk lamp", "Pulse fitness band", "Vertex router",
    "Cobalt headphones", "Atlas backpack", "Zephyr fan", "Quill tablet", "Harbor camera",
)  # fmt: skip
PLANS: tuple[str, ...] = ("Basic", "Plus", "Premium", "Family", "Pro")

#: Words that decide the intent. Each intent's messages contain at least one, and none of the others'.
INTENT_CUES: dict[str, tuple[str, ...]] = {
    "billing": ("charged", "invoice", "bill"),
    "refund": ("refund", "money back"),
    "shipping": ("package", "deliver", "tracking", "ship"),
    "account_access": ("log in", "password", "locked out", "sign in", "two-factor"),
    "technical_issue": ("crash", "error", "freezes", "blank screen"),
    "cancellation": ("cancel", "end my", "stop my subscription"),
}

#: Sentences that decide the priority; each contains a cue of :data:`PRIORITY_CUES` for its level only.
_PRIORITY_SENTENCES: dict[str, tuple[str, ...]] = {
    "low": ("No rush on this.", "Whenever you get a chance is fine.", "It can wait until next week.",
            "No hurry at all."),
    "medium": ("Could you look into it this week?", "I would appreciate a reply in the next few days.",
               "Please get back to me when you can."),
    "high": ("Please fix this as soon as possible.", "This is really frustrating and I need it sorted soon.",
             "I have contacted you about this before and I need it sorted soon."),
    "urgent": ("URGENT: I need this resolved today!", "This is an emergency, please help immediately.",
               "Please help immediately, my business depends on it today!"),
}  # fmt: skip
PRIORITY_CUES: dict[str, tuple[str, ...]] = {
    "low": ("no rush", "whenever you get a chance", "can wait", "no hurry"),
    "medium": ("this week", "next few days", "when you can"),
    "high": ("as soon as possible", "sorted soon"),
    "urgent": ("urgent", "emergency", "immediately"),
}

#: (customer message, agent reply) template pairs, so the reply answers what was asked.
_EXCHANGES: dict[str, tuple[tuple[str, str], ...]] = {
    "billing": (
        ("I was charged twice for the {product} this month. My card shows two payments of ${amount}.",
         "I found the duplicate payment of ${amount} and reversed it. You will see the correction on your card "
         "within five business days."),
        ("My invoice for order {order} lists ${amount}, but the price on your site was lower.",
         "You are right, the price on order {order} was wrong. I have corrected it and emailed you an updated "
         "copy with the difference credited."),
        ("Why does my latest bill include a ${amount} fee I never agreed to?",
         "I looked into your account and the ${amount} fee should not be there. I have removed it from your "
         "next statement."),
        ("The invoice I received for the {product} has the wrong company address on it.",
         "I have updated the address and sent you a corrected copy for the {product} by email."),
        ("I was charged ${amount} for the {plan} plan although I picked the free trial.",
         "I can see the trial was not applied to your {plan} plan. I have reversed the payment of ${amount} "
         "and started your free trial."),
    ),
    "refund": (
        ("I returned the {product} {days} days ago and I am still waiting for my refund of ${amount}.",
         "Your {product} reached our warehouse and I have issued the refund of ${amount}. It takes three to "
         "five business days to reach your account."),
        ("The {product} arrived broken. I would like my money back for order {order}.",
         "I am sorry the {product} was damaged. I have approved a full refund for order {order} and emailed "
         "you a prepaid return label."),
        ("Can I get a refund for order {order}? The {product} does not work as described.",
         "Of course. I have approved the return of order {order}; once the {product} is back with us, the "
         "money goes back to your card."),
        ("You promised a refund of ${amount} for order {order} {days} days ago. Where is it?",
         "I am sorry for the delay. I have escalated the refund of ${amount} for order {order} to our "
         "payments team and they will process it today."),
    ),
    "shipping": (
        ("My package for order {order} has not arrived after {days} days and the tracking page has not changed.",
         "I checked order {order} with the carrier. Your parcel is at the local depot and should reach you "
         "within two days."),
        ("Tracking says my {product} was delivered, but there is nothing at my door.",
         "I am sorry your {product} has not turned up. I have opened an investigation with the carrier and will "
         "send a replacement if it is not found within 48 hours."),
        ("Can you change the delivery address for order {order}? I moved last week.",
         "I have updated the address on order {order}. The new details will be used for the dispatch."),
        ("Order {order} was supposed to ship {days} days ago and it still says processing.",
         "I am sorry for the wait. Order {order} was held by a stock check; it leaves our warehouse today and "
         "you will get an email with the carrier details."),
    ),
    "account_access": (
        ("I cannot log in to my account. It says my password is wrong, but I reset it {days} days ago.",
         "I have cleared the old credentials and sent a secure reset link to your email address. It is valid "
         "for one hour."),
        ("My account got locked out after too many attempts and I cannot get back in.",
         "I have unlocked your account. You can try again now, and the reset link on the sign-in page works "
         "if you need a new one."),
        ("I never receive the two-factor code when I try to sign in on my phone.",
         "I have reset the verification on your account, so the next code will go to the phone number on file."),
        ("I changed my email address and now I cannot sign in to manage my {plan} plan.",
         "I have linked your new email address to your account and your {plan} plan. Please try again and let "
         "me know if it works."),
    ),
    "technical_issue": (
        ("The {product} app keeps crashing when I open the settings page.",
         "Thank you for the details. Please update the {product} app to the latest version and restart the "
         "device; that fixes this problem in most cases."),
        ("I get error code {code} every time I try to sync my {product}.",
         "I have passed code {code} to our engineers. In the meantime, signing out and back in on the {product} "
         "usually clears it."),
        ("Since the last update my {product} freezes after a few minutes of use.",
         "We are aware of this problem with the {product} after the last update, and a fix is on the way. I am "
         "sorry for the trouble."),
        ("The dashboard only shows a blank screen on my laptop since yesterday.",
         "Please clear your browser cache and reload the dashboard. If it still looks empty, send me a "
         "screenshot and I will take it to our engineers."),
    ),
    "cancellation": (
        ("Please cancel my {plan} subscription before the next renewal.",
         "I have processed your request. Your {plan} plan stays active until the end of the current period and "
         "will not renew."),
        ("I want to cancel order {order}, I picked the wrong {product}.",
         "Order {order} has been stopped before dispatch and you will not pay anything for it. You can order "
         "the right model at any time."),
        ("How do I end my {plan} membership? I no longer need it.",
         "I have closed your {plan} membership for you. If you change your mind, you can rejoin at any time."),
        ("Please stop my subscription to the {plan} plan, I am moving to another provider.",
         "I am sorry to see you go. Your {plan} plan is closed and no further payments will be taken."),
    ),
}  # fmt: skip

_REPLY_OPENERS: dict[str, tuple[str, ...]] = {
    "low": ("Thanks for reaching out.", "Thank you for your message."),
    "medium": ("Thanks for getting in touch.", "Thank you for contacting us."),
    "high": ("I am sorry for the frustration, and thank you for your patience.", "I understand this is pressing."),
    "urgent": ("I have given your case top priority.", "I am handling this right away."),
}
_GREETINGS = ("Hi!", "Hello!", "Hello there.", "Good morning.", "Hey!", "Dear support team,\n", "")
_SYSTEM_PROMPTS = (
    "You are a friendly support-desk assistant for Northwind Goods. Answer the customer politely and concisely.",
    "You are a helpful customer support agent.",
    "You work on the support desk of an online electronics shop. Be kind and specific.",
)
_THANKS = ("Thank you so much!", "Great, thanks for the quick help.", "Thanks, that solves it.")
_THANKS_REPLIES = ("You are welcome! Have a great day.", "Glad I could help. Take care!", "Happy to help!")


@dataclass(frozen=True)
class Ticket:
    """One support ticket: the customer's message, its labels and an agent's reply."""

    customer_name: str
    message: str
    intent: str
    priority: str
    reply: str


def _slots(rng: random.Random) -> dict[str, str]:
    return {
        "product": rng.choice(PRODUCTS),
        "plan": rng.choice(PLANS),
        "order": f"#{rng.randint(10000, 99999)}",
        "amount": f"{rng.randint(5, 400)}.{rng.randint(0, 99):02d}",
        "days": str(rng.randint(2, 30)),
        "code": f"E{rng.randint(100, 999)}",
    }


def _message(rng: random.Random, name: str, body: str, priority: str) -> str:
    cue = rng.choice(_PRIORITY_SENTENCES[priority])
    parts = [rng.choice(_GREETINGS)]
    if rng.random() < 0.4:
        parts.append(f"This is {name}.")
    parts += [cue, body] if rng.random() < 0.3 else [body, cue]
    signoff = rng.choice(("", f"Thanks, {name}", f"Best, {name}", f"- {name}"))
    text = " ".join(p for p in parts if p).replace("\n ", "\n")
    return text + (f"\n{signoff}" if signoff else "")


def _reply(rng: random.Random, name: str, body: str, priority: str) -> str:
    opener = rng.choice(_REPLY_OPENERS[priority])
    agent = rng.choice(AGENT_NAMES)
    return f"Hi {name},\n{opener} {body}\nBest regards, {agent} from the support team"


def generate_tickets(n: int, seed: int) -> list[Ticket]:
    """``n`` tickets, the same for the same ``(n, seed)``; intents and priorities drawn uniformly."""
    rng = random.Random(seed)
    tickets = []
    for _ in range(n):
        name = rng.choice(CUSTOMER_NAMES)
        intent = rng.choice(INTENTS)
        priority = rng.choice(PRIORITIES)
        slots = _slots(rng)
        asked, answer = rng.choice(_EXCHANGES[intent])
        message = _message(rng, name, asked.format(**slots), priority)
        reply = _reply(rng, name, answer.format(**slots), priority)
        tickets.append(Ticket(name, message, intent, priority, reply))
    return tickets


def _matches(text: str, cues: dict[str, tuple[str, ...]]) -> list[str]:
    """Labels with a cue starting at a word boundary ("ship" matches "shipped", not "membership")."""
    low = text.lower()
    return [label for label, words in cues.items() if any(re.search(r"\b" + re.escape(w), low) for w in words)]


def infer_intent(message: str) -> str | None:
    """The intent whose cue words occur in ``message``; None when zero or several intents match."""
    found = _matches(message, INTENT_CUES)
    return found[0] if len(found) == 1 else None


def infer_priority(message: str) -> str | None:
    """The priority whose cue phrases occur in ``message``; None when zero or several match."""
    found = _matches(message, PRIORITY_CUES)
    return found[0] if len(found) == 1 else None


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
    "Help centre: plans. You can move between the Basic, Plus, Premium, Family and Pro plans at any time. "
    "Changes apply from the next billing period.",
    "Agent handbook. Greet the customer by name, restate the problem in one sentence, say what you did, and "
    "tell them what happens next. Keep replies short and friendly.",
    "Agent handbook. Customers who say their problem is urgent, or who have written before, are answered first. "
    "Thank customers for their patience when a case took long.",
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


def _prose(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return f"{BOS}{rng.choice(_ARTICLES)}{EOS}\n"
    t = generate_tickets(1, rng.randrange(2**31))[0]
    return (
        f'{BOS}Case note. {t.customer_name} wrote to the support desk: "{t.message}" '
        f'The agent answered: "{t.reply}"{EOS}\n'
    )


def pretraining_texts(n: int, seed: int) -> list[str]:
    """``n`` pretraining documents with special tokens in place: ~85% chat-formatted conversations
    (rendered with the reference chat template), the rest help-centre articles and case notes."""
    rng = random.Random(seed)
    tickets = generate_tickets(n, seed + 1)
    return [_prose(rng) if rng.random() < 0.15 else _conversation(rng, t) for t in tickets]
