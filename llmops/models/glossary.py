"""The words of the support desk's glossary in the pretraining corpus (:mod:`llmops.models.corpus`).

Words, never sentences: each team's words come from both pools' problems, as a real base model would know
what "firmware" or "authenticator" are about; no phrasing of the held-out pool is here (tested).
"""

from __future__ import annotations

#: The words of each team's tickets, from both pools' problems (what a real base model would know the
#: words mean); the pretraining glossary lists them, never a sentence of the test pool.
DOMAIN_WORDS: dict[str, tuple[str, ...]] = {
    "billing": (
        "invoice", "bill", "charged twice", "payment", "fee", "statement", "VAT", "receipt", "debited",
        "price", "discount code", "tax", "card payment", "billed", "amount", "identical payments", "mystery fee",
        "checkout price", "money taken from my card", "corrected invoice",
    ),
    "refund": (
        "refund", "money back", "reimbursement", "reimbursed", "paid back", "returned item", "return",
        "partial refund", "refund to my card", "faulty item", "broken on arrival", "cracked on arrival", "return accepted",
        "pay back", "be reimbursed",
    ),
    "shipping": (
        "parcel", "package", "delivery", "courier", "tracking number", "depot", "driver", "shipment",
        "carrier", "in transit", "delivery address", "dispatch", "handed over", "missing parcel", "wrong parcel",
        "parcel sent back", "late delivery",
    ),
    "account_access": (
        "password", "login", "sign in", "locked out", "two-factor code", "authenticator", "verification",
        "credentials", "username", "hacked account", "reset link", "profile access", "verify my identity",
        "get into my account", "email on my account changed",
    ),
    "technical_issue": (
        "crash", "error code", "freezes", "blank screen", "firmware", "bluetooth", "overheats", "flickers",
        "wifi", "battery drain", "sync", "restarts by itself", "start-up logo", "bug", "export fails", "page hangs",
        "app closes", "connection drops", "pairing", "freezing", "rebooting", "not syncing", "not responding",
    ),
    "cancellation": (
        "cancel", "terminate", "unsubscribe", "opt out", "renewal", "membership", "close my account",
        "quit the service", "call off the order", "end my contract", "switch off the plan", "scrap the order",
        "remove my subscription", "leaving for a cheaper option", "stop the plan",
    ),
}  # fmt: skip
#: The words of each urgency level (the glossary's urgency lines).
URGENCY_WORDS: dict[str, tuple[str, ...]] = {
    "low": ("no rush", "no hurry", "not urgent", "low priority", "can wait", "whenever", "take your time"),
    "medium": ("this week", "next few days", "when you can", "nothing said about urgency"),
    "high": ("as soon as possible", "frustrating", "sorted soon", "quickly", "priority", "hurry", "waiting long"),
    "urgent": ("urgent", "emergency", "immediately", "right now", "critical", "business depends on it", "today"),
}
