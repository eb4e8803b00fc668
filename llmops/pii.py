"""Personal data in free text: find it (``data validate``) and mask it (the gateway's captured traffic).

Detectors, applied in this order (a span one of them masks is not seen by the next):

* **email** - ``name@domain.tld``;
* **iban** - two letters, two check digits and 11-30 letters/digits (spaces allowed every 4), whose
  ISO 13616 mod-97 check holds;
* **card** - 13-19 digits (spaces or dashes between them) that pass the Luhn check;
* **phone** - 9-15 digits with spaces, dots, dashes or parentheses between them.

Numbers right after a word character, ``#``, ``$`` or ``.`` are not personal data (order ``#50397``,
``$1299.00``, ``E404``), nor are numbers under 9 digits (dates, amounts, ticket ids).

:func:`redact_pii` replaces each find with a typed mask: ``[EMAIL]``, ``[IBAN]``, ``[CARD]``,
``[PHONE]``. Both functions skip a detector whose trigger (an ``@``, a digit) is absent from the text,
so most text costs three quick scans (an ``@``, its digits, two capitals and two digits).
"""

from __future__ import annotations

import re

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
# digits with spaces, dots, dashes or parentheses between them; not right after a word char, '#' or '$'
_NUMBERISH = re.compile(r"(?<![\w#$.])[+(]?\d[\d ().-]{6,}\d(?![\w])")
# country code, check digits, then the account (BBAN): groups of up to 4 letters/digits, single spaces allowed
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_DIGIT = re.compile(r"\d")
_IBAN_START = re.compile(r"[A-Z]{2}\d\d")  # cheap: only text with this runs the IBAN pattern
_NOT_DIGIT = re.compile(r"\D")

MASKS = {"email": "[EMAIL]", "iban": "[IBAN]", "card": "[CARD]", "phone": "[PHONE]"}


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    """Whether ``text`` (spaces allowed) is an IBAN by its length and ISO 13616 mod-97 check."""
    compact = text.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact[:2].isalpha() or not compact[2:4].isdigit():
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def _number_kind(match: str) -> str | None:
    digits = _NOT_DIGIT.sub("", match)
    if 13 <= len(digits) <= 19 and _luhn(digits):
        return "card"
    if 9 <= len(digits) <= 15:
        return "phone"
    return None


def _mask_iban(match: str, found: set[str]) -> str:
    """The longest valid IBAN at the start of ``match`` masked (a grouped one may run into a next word)."""
    groups = match.split(" ")
    for end in range(len(groups), 0, -1):
        if iban_valid("".join(groups[:end])):
            found.add("iban")
            return " ".join([MASKS["iban"], *groups[end:]])
    return match


def _scan(text: str, found: set[str]) -> str:
    """``text`` with every find masked; the kinds found are added to ``found``."""

    def email(match: re.Match[str]) -> str:
        found.add("email")
        return MASKS["email"]

    def number(match: re.Match[str]) -> str:
        kind = _number_kind(match.group())
        if kind is None:
            return match.group()
        found.add(kind)
        return MASKS[kind]

    if "@" in text:
        text = _EMAIL.sub(email, text)
    digits = len(_DIGIT.findall(text))
    if digits >= 2 and _IBAN_START.search(text) is not None:
        text = _IBAN.sub(lambda m: _mask_iban(m.group(), found), text)
    if digits >= 9:  # a phone number has 9 digits at least, a card 13
        text = _NUMBERISH.sub(number, text)
    return text


def pii_kinds(text: str) -> set[str]:
    """Which kinds of personal data occur in ``text``: ``email``, ``iban``, ``card``, ``phone``."""
    found: set[str] = set()
    _scan(text, found)
    return found


def redact_pii(text: str) -> str:
    """``text`` with each email, IBAN, card and phone number replaced by its mask (``[EMAIL]`` …)."""
    return _scan(text, set())
